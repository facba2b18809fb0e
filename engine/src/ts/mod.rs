//! The time-series store: float values at millisecond timestamps, per named
//! series with optional string labels, kept in the internal keyspace `_ts`.
//!
//! A series is a run of sealed, compressed blocks (`codec.rs`) plus a head of
//! single points. A point newer than every sealed block joins the head; once
//! the head holds [`BLOCK_POINTS`] points they are sealed into one block, in
//! the same atomic commit. A point within the out-of-order window but not
//! newer than the sealed blocks is merged into the block covering its time.
//! Each block has a summary record beside it, so downsampling uses the
//! summary of a block that lies inside one step and decodes only the others.
//! Retention is applied with range deletes over whole blocks (plus a filter
//! at read time), never by rewriting the series. See `docs/design.md`,
//! "The time-series store", and `engine/FORMAT.md`, "Time-series store".

mod codec;
mod keys;
mod query;

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{Db, Error, Keyspace, KeyspaceOptions, Result, Snapshot, Transaction};

use keys::{Meta, Summary};
pub use keys::{MAX_LABELS, MAX_NAME_BYTES};
pub use codec::ValueCodec;
pub use query::{Aggregate, DownsampleReport};

/// Bytes of one block holding these points (timestamps strictly increasing,
/// as many as values, at most [`BLOCK_POINTS`]` * 2`), encoded with `codec`,
/// or with the smallest codec if `None` (what the store does). For
/// benchmarks and reports of bytes per point; `None` if the points are not a
/// valid block.
pub fn encoded_block_bytes(timestamps: &[i64], values: &[f64], codec: Option<ValueCodec>) -> Option<usize> {
    if timestamps.is_empty() || timestamps.len() != values.len() || timestamps.len() > SPLIT_POINTS || timestamps.windows(2).any(|p| matches!(p, [a, b] if a >= b)) {
        return None;
    }
    Some(codec::encode_block_with(timestamps, values, codec).len())
}

/// Points per sealed block: the head is sealed when it holds this many.
/// Measured on a one-decimal random walk at 10 s: 0.9 B/point of block at
/// 1024, where per-block records and keys are a small share.
pub const BLOCK_POINTS: usize = 1024;
/// A block grown past this by out-of-order points is split.
const SPLIT_POINTS: usize = 2 * BLOCK_POINTS;
/// Out-of-order window of a new series: a point older than the series' newest
/// minus this is refused. Change it per series with
/// [`TimeSeries::set_out_of_order_window`].
pub const DEFAULT_OUT_OF_ORDER_WINDOW_MS: i64 = 3_600_000;
/// Points an import commits at once (one transaction).
const IMPORT_CHUNK_POINTS: usize = 64 * BLOCK_POINTS;
/// Times an operation is retried when another writer changed the series.
const CONFLICT_RETRIES: usize = 16;

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds (any epoch; signed).
    pub ts_ms: i64,
    /// The value, any f64 (NaN, infinities and -0.0 are kept bit for bit).
    pub value: f64,
}

/// What [`TimeSeries::series`] lists per series.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SeriesInfo {
    /// The series' name.
    pub name: String,
    /// Its labels, in the order they were set.
    pub labels: Vec<(String, String)>,
    /// Points a full-range query returns (retention applied).
    pub points: u64,
    /// Retention window, if any.
    pub keep_ms: Option<i64>,
    /// Out-of-order window.
    pub out_of_order_window_ms: i64,
}

/// The time-series store of a [`Db`] ([`Db::time_series`]).
#[derive(Debug)]
pub struct TimeSeries<'db> {
    db: &'db Db,
}

impl Db {
    /// The time-series store of this database. Its keyspace `_ts` is made at
    /// the first write.
    ///
    /// ```
    /// use synapsed_storage::{Credential, Db, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), &Credential::passphrase("pw"), Options::default())?;
    /// let ts = db.time_series();
    /// for minute in 0..60 {
    ///     ts.append("cpu", minute * 60_000, 0.5 + minute as f64 / 100.0)?;
    /// }
    /// // The first ten minutes: [0, 600 000) ms.
    /// let points = ts.query("cpu", 0, 600_000)?;
    /// assert_eq!(points.len(), 10);
    /// assert_eq!(points[9].value, 0.59);
    /// # db.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn time_series(&self) -> TimeSeries<'_> {
        TimeSeries { db: self }
    }
}

/// One write to a series, staged in memory until its transaction commits.
struct Staged {
    name: String,
    meta: Meta,
    /// The whole head, as it will be after the commit.
    head: BTreeMap<i64, f64>,
    /// Head timestamps stored when the head was loaded.
    head_stored: Vec<i64>,
    /// Blocks changed or made, by last timestamp.
    blocks: BTreeMap<i64, (Vec<i64>, Vec<f64>)>,
    sealed_any: bool,
}

impl<'db> TimeSeries<'db> {
    fn keyspace(&self) -> Result<Option<Keyspace>> {
        self.db.keyspace(keys::KEYSPACE)
    }

    fn keyspace_for_write(&self) -> Result<Keyspace> {
        if let Some(ks) = self.keyspace()? {
            return Ok(ks);
        }
        match self.db.create_internal_keyspace(keys::KEYSPACE, KeyspaceOptions::default()) {
            Ok(ks) => Ok(ks),
            Err(Error::KeyspaceExists(_)) => self.keyspace()?.ok_or_else(|| Error::Internal("time-series keyspace vanished".into())),
            Err(e) => Err(e),
        }
    }

    fn meta_in(&self, ks: &Keyspace, name: &str, snapshot: Option<&Snapshot>) -> Result<Option<Meta>> {
        let key = keys::meta_key(name);
        let raw = match snapshot {
            Some(s) => self.db.get_at_in(ks, &key, s)?,
            None => self.db.get_in(ks, &key)?,
        };
        raw.map(|r| Meta::decode(&r)).transpose()
    }

    /// Runs `op` on `series` in a transaction, again when another writer
    /// conflicted. Writers of one series in this process take turns on a
    /// striped lock first, so they do not conflict with each other; the
    /// transaction still guards the series' metadata (and the next series id)
    /// against any other writer.
    fn retry<T>(&self, series: &str, mut op: impl FnMut(&mut Transaction<'db>) -> Result<T>) -> Result<T> {
        let _turn = series_lock(self.db, series).lock();
        let mut attempt = 0;
        loop {
            let mut txn = self.db.transaction();
            let out = op(&mut txn)?;
            match txn.commit() {
                Ok(_) => return Ok(out),
                Err(Error::Conflict) if attempt < CONFLICT_RETRIES => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    fn load_meta(&self, txn: &mut Transaction<'db>, ks: &Keyspace, name: &str) -> Result<Meta> {
        keys::check_name("series name", name)?;
        if let Some(raw) = txn.get_in(ks, &keys::meta_key(name))? {
            return Meta::decode(&raw);
        }
        let id = match txn.get_in(ks, keys::NEXT_ID)? {
            Some(raw) => u64::from_le_bytes(raw.as_slice().try_into().map_err(|_| Error::Corruption {
                file: "time-series record".into(),
                offset: 0,
                reason: "next series id of the wrong length".into(),
            })?),
            None => 0,
        };
        txn.put_in(ks, keys::NEXT_ID, &(id + 1).to_le_bytes());
        Ok(Meta { id, keep_ms: None, window_ms: DEFAULT_OUT_OF_ORDER_WINDOW_MS, newest: None, sealed_last: None, head_count: 0, floor: None, labels: Vec::new() })
    }

    /// Appends one point to `series` (made on first use). A point at a
    /// timestamp the series already holds replaces it. A point older than the
    /// series' newest minus its out-of-order window is refused with
    /// [`Error::InvalidArgument`], and nothing is written.
    pub fn append(&self, series: &str, ts_ms: i64, value: f64) -> Result<()> {
        let ks = self.keyspace_for_write()?;
        let sealed = self.retry(series, |txn| {
            let mut meta = self.load_meta(txn, &ks, series)?;
            check_window(series, &meta, ts_ms)?;
            let in_head = !matches!(meta.sealed_last, Some(s) if ts_ms <= s);
            if in_head && (meta.head_count as usize) + 1 < BLOCK_POINTS {
                // The common case: one point key and the metadata.
                let key = keys::timed_key(keys::POINT, meta.id, ts_ms);
                if txn.get_in(&ks, &key)?.is_none() {
                    meta.head_count += 1;
                }
                txn.put_in(&ks, &key, &value.to_bits().to_le_bytes());
                meta.newest = Some(meta.newest.map_or(ts_ms, |n| n.max(ts_ms)));
                txn.put_in(&ks, &keys::meta_key(series), &meta.encode());
                return Ok(None);
            }
            let mut staged = self.stage(&ks, series, meta)?;
            self.add(&ks, &mut staged, ts_ms, value)?;
            self.write_staged(txn, &ks, &staged);
            Ok(Some(staged))
        })?;
        if let Some(staged) = sealed {
            if staged.sealed_any {
                self.apply_retention(&ks, &staged.meta)?;
            }
        }
        Ok(())
    }

    /// Appends points in order, as [`TimeSeries::append`] one by one would,
    /// committing every 65536 points atomically. On an error (a point outside
    /// the out-of-order window) the points of earlier commits stay and the
    /// rest of the chunk is not written. Returns the number of points written.
    pub fn import(&self, series: &str, points: impl IntoIterator<Item = Point>) -> Result<u64> {
        let ks = self.keyspace_for_write()?;
        let mut written = 0u64;
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK_POINTS);
        let mut points = points.into_iter().peekable();
        while points.peek().is_some() {
            chunk.clear();
            chunk.extend(points.by_ref().take(IMPORT_CHUNK_POINTS));
            let staged = self.retry(series, |txn| {
                let meta = self.load_meta(txn, &ks, series)?;
                let mut staged = self.stage(&ks, series, meta)?;
                for p in &chunk {
                    check_window(series, &staged.meta, p.ts_ms)?;
                    self.add(&ks, &mut staged, p.ts_ms, p.value)?;
                }
                self.write_staged(txn, &ks, &staged);
                Ok(staged)
            })?;
            written += chunk.len() as u64;
            if staged.sealed_any {
                self.apply_retention(&ks, &staged.meta)?;
            }
        }
        Ok(written)
    }

    /// Loads a series' head for a staged write.
    fn stage(&self, ks: &Keyspace, name: &str, meta: Meta) -> Result<Staged> {
        let mut head = BTreeMap::new();
        let prefix = keys::series_prefix(keys::POINT, meta.id);
        for item in self.db.scan_prefix_in(ks, &prefix)? {
            let (key, value) = item?;
            head.insert(keys::key_ts(&key)?, point_value(&value)?);
        }
        let head_stored = head.keys().copied().collect();
        Ok(Staged { name: name.to_string(), meta, head, head_stored, blocks: BTreeMap::new(), sealed_any: false })
    }

    /// Adds one point (window already checked) to a staged write.
    fn add(&self, ks: &Keyspace, staged: &mut Staged, ts: i64, value: f64) -> Result<()> {
        let meta = &mut staged.meta;
        meta.newest = Some(meta.newest.map_or(ts, |n| n.max(ts)));
        if !matches!(meta.sealed_last, Some(s) if ts <= s) {
            staged.head.insert(ts, value);
            if staged.head.len() >= BLOCK_POINTS {
                let head = std::mem::take(&mut staged.head);
                let (t, v): (Vec<i64>, Vec<f64>) = head.into_iter().unzip();
                if let Some(&last) = t.last() {
                    meta.sealed_last = Some(last);
                    staged.blocks.insert(last, (t, v));
                    staged.sealed_any = true;
                }
            }
            return Ok(());
        }
        // Not newer than the sealed blocks: into the block keyed by the
        // smallest last timestamp at or after `ts`.
        let staged_key = staged.blocks.range(ts..).next().map(|(k, _)| *k);
        let stored_key = self.block_at_or_after(ks, meta.id, ts)?;
        let key = match (staged_key, stored_key) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (mut t, mut v) = match key {
            Some(k) => match staged.blocks.remove(&k) {
                Some(block) => block,
                None => self.read_block(ks, meta.id, k, None)?,
            },
            // Every block at or after `ts` was dropped by retention.
            None => (Vec::new(), Vec::new()),
        };
        match t.binary_search(&ts) {
            Ok(i) => {
                if let Some(slot) = v.get_mut(i) {
                    *slot = value;
                }
            }
            Err(i) => {
                t.insert(i, ts);
                v.insert(i, value);
            }
        }
        if t.len() > SPLIT_POINTS {
            let t_hi = t.split_off(BLOCK_POINTS);
            let v_hi = v.split_off(BLOCK_POINTS);
            if let Some(&last) = t_hi.last() {
                staged.blocks.insert(last, (t_hi, v_hi));
            }
        }
        if let Some(&last) = t.last() {
            staged.blocks.insert(last, (t, v));
        }
        Ok(())
    }

    fn block_at_or_after(&self, ks: &Keyspace, id: u64, ts: i64) -> Result<Option<i64>> {
        let start = keys::timed_key(keys::SUMMARY, id, ts);
        let end = keys::series_prefix(keys::SUMMARY, id.wrapping_add(1));
        let mut it = self.db.range_in(ks, Bound::Included(&start), series_end(&end, id), false, None)?;
        match it.next() {
            Some(item) => Ok(Some(keys::key_ts(&item?.0)?)),
            None => Ok(None),
        }
    }

    fn read_block(&self, ks: &Keyspace, id: u64, last: i64, snapshot: Option<&Snapshot>) -> Result<(Vec<i64>, Vec<f64>)> {
        let key = keys::timed_key(keys::BLOCK, id, last);
        let raw = match snapshot {
            Some(s) => self.db.get_at_in(ks, &key, s)?,
            None => self.db.get_in(ks, &key)?,
        };
        let raw = raw.ok_or_else(|| Error::Corruption { file: "time-series block".into(), offset: 0, reason: "a block summary has no block".into() })?;
        codec::decode_block(&raw)
    }

    fn write_staged(&self, txn: &mut Transaction<'db>, ks: &Keyspace, staged: &Staged) {
        let id = staged.meta.id;
        for ts in &staged.head_stored {
            if !staged.head.contains_key(ts) {
                txn.delete_in(ks, &keys::timed_key(keys::POINT, id, *ts));
            }
        }
        for (ts, v) in &staged.head {
            txn.put_in(ks, &keys::timed_key(keys::POINT, id, *ts), &v.to_bits().to_le_bytes());
        }
        for (last, (t, v)) in &staged.blocks {
            txn.put_in(ks, &keys::timed_key(keys::BLOCK, id, *last), &codec::encode_block(t, v));
            if let Some(summary) = Summary::of(t, v) {
                txn.put_in(ks, &keys::timed_key(keys::SUMMARY, id, *last), &summary.encode());
            }
        }
        let mut meta = staged.meta.clone();
        meta.head_count = staged.head.len() as u32;
        txn.put_in(ks, &keys::meta_key(&staged.name), &meta.encode());
    }

    /// Deletes, with one range delete each for blocks and summaries, the
    /// blocks whose every point is past retention.
    fn apply_retention(&self, ks: &Keyspace, meta: &Meta) -> Result<()> {
        let Some(cutoff) = meta.cutoff() else { return Ok(()) };
        let start = keys::timed_key(keys::SUMMARY, meta.id, i64::MIN);
        let end = keys::timed_key(keys::SUMMARY, meta.id, cutoff);
        if start >= end {
            return Ok(());
        }
        // Only when a block is past retention: a range delete is held in
        // memory and in the manifest until compaction retires it.
        if self.db.range_in(ks, Bound::Included(&start), Bound::Excluded(&end), false, None)?.next().is_none() {
            return Ok(());
        }
        let mut batch = crate::WriteBatch::new();
        batch.delete_range_in(ks, keys::timed_key(keys::BLOCK, meta.id, i64::MIN), keys::timed_key(keys::BLOCK, meta.id, cutoff));
        batch.delete_range_in(ks, &start, &end);
        self.db.write(batch)?;
        Ok(())
    }

    /// Sets how long `series` keeps points: those older than its newest
    /// point minus `keep_ms` are no longer returned, and whole blocks of them
    /// are deleted (now, and as the series grows). `None` keeps everything
    /// from now on. Points already past retention stay hidden when the window
    /// grows later (the cutoff never moves back), since they may be deleted.
    /// A negative `keep_ms` is [`Error::InvalidArgument`].
    pub fn set_retention(&self, series: &str, keep_ms: Option<i64>) -> Result<()> {
        if keep_ms.is_some_and(|k| k < 0) {
            return Err(Error::InvalidArgument("retention must not be negative".into()));
        }
        let ks = self.keyspace_for_write()?;
        let meta = self.retry(series, |txn| {
            let mut meta = self.load_meta(txn, &ks, series)?;
            meta.keep_ms = keep_ms;
            txn.put_in(&ks, &keys::meta_key(series), &meta.encode());
            Ok(meta)
        })?;
        self.apply_retention(&ks, &meta)
    }

    /// Sets the out-of-order window of `series` (milliseconds, at least 0).
    pub fn set_out_of_order_window(&self, series: &str, window_ms: i64) -> Result<()> {
        if window_ms < 0 {
            return Err(Error::InvalidArgument("the out-of-order window must not be negative".into()));
        }
        let ks = self.keyspace_for_write()?;
        self.retry(series, |txn| {
            let mut meta = self.load_meta(txn, &ks, series)?;
            meta.window_ms = window_ms;
            txn.put_in(&ks, &keys::meta_key(series), &meta.encode());
            Ok(())
        })
    }

    /// Replaces the labels of `series` (made if new): at most [`MAX_LABELS`],
    /// names and values of 1..=[`MAX_NAME_BYTES`] bytes.
    pub fn set_labels(&self, series: &str, labels: &[(&str, &str)]) -> Result<()> {
        if labels.len() > MAX_LABELS {
            return Err(Error::InvalidArgument(format!("at most {MAX_LABELS} labels per series")));
        }
        for (k, v) in labels {
            keys::check_name("label name", k)?;
            keys::check_name("label value", v)?;
        }
        let ks = self.keyspace_for_write()?;
        self.retry(series, |txn| {
            let mut meta = self.load_meta(txn, &ks, series)?;
            meta.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            txn.put_in(&ks, &keys::meta_key(series), &meta.encode());
            Ok(())
        })
    }

    /// The points of `series` with `from <= ts < to`, in time order (past
    /// retention excluded). A series never written has none.
    pub fn query(&self, series: &str, from: i64, to: i64) -> Result<Vec<Point>> {
        let _timer = crate::metrics::timed(crate::metrics::StoreOp::TsQuery);
        let mut out = Vec::new();
        self.visit(series, from, to, &mut |visit| {
            match visit {
                query::Visit::Points(t, v) => out.extend(t.iter().zip(v).map(|(&ts_ms, &value)| Point { ts_ms, value })),
                query::Visit::Summary(_) => {}
            }
            Ok(())
        }, None)?;
        Ok(out)
    }

    /// The newest point of `series`, if any.
    pub fn latest(&self, series: &str) -> Result<Option<Point>> {
        let Some(ks) = self.keyspace()? else { return Ok(None) };
        let snapshot = self.db.snapshot();
        let Some(meta) = self.meta_in(&ks, series, Some(&snapshot))? else { return Ok(None) };
        let Some(newest) = meta.newest else { return Ok(None) };
        if let Some(raw) = self.db.get_at_in(&ks, &keys::timed_key(keys::POINT, meta.id, newest), &snapshot)? {
            return Ok(Some(Point { ts_ms: newest, value: point_value(&raw)? }));
        }
        match self.db.get_at_in(&ks, &keys::timed_key(keys::SUMMARY, meta.id, newest), &snapshot)? {
            Some(raw) => Ok(Some(Point { ts_ms: newest, value: Summary::decode(&raw)?.last })),
            None => Err(Error::Corruption { file: "time-series record".into(), offset: 0, reason: "the newest point of a series is missing".into() }),
        }
    }

    /// Every series, by name, with its labels and number of points.
    pub fn series(&self) -> Result<Vec<SeriesInfo>> {
        let Some(ks) = self.keyspace()? else { return Ok(Vec::new()) };
        let snapshot = self.db.snapshot();
        let mut metas = Vec::new();
        for item in self.db.range_in(&ks, Bound::Included(&[keys::META][..]), Bound::Excluded(&[keys::META + 1][..]), false, Some(&snapshot))? {
            let (key, value) = item?;
            let name = String::from_utf8(key.get(1..).unwrap_or_default().to_vec())
                .map_err(|_| Error::Corruption { file: "time-series record".into(), offset: 0, reason: "series name not UTF-8".into() })?;
            metas.push((name, Meta::decode(&value)?));
        }
        let mut out = Vec::with_capacity(metas.len());
        for (name, meta) in metas {
            let points = self.count(&ks, &meta, &snapshot)?;
            out.push(SeriesInfo { name, labels: meta.labels, points, keep_ms: meta.keep_ms, out_of_order_window_ms: meta.window_ms });
        }
        Ok(out)
    }

    fn count(&self, ks: &Keyspace, meta: &Meta, snapshot: &Snapshot) -> Result<u64> {
        let cutoff = meta.cutoff().unwrap_or(i64::MIN);
        let mut n = 0u64;
        let start = keys::timed_key(keys::SUMMARY, meta.id, cutoff);
        let end = keys::series_prefix(keys::SUMMARY, meta.id.wrapping_add(1));
        for item in self.db.range_in(ks, Bound::Included(&start), series_end(&end, meta.id), false, Some(snapshot))? {
            let (key, value) = item?;
            let s = Summary::decode(&value)?;
            if s.first_ts >= cutoff {
                n += u64::from(s.count);
            } else {
                let (t, _) = self.read_block(ks, meta.id, keys::key_ts(&key)?, Some(snapshot))?;
                n += t.iter().filter(|&&t| t >= cutoff).count() as u64;
            }
        }
        if cutoff == i64::MIN {
            n += u64::from(meta.head_count);
        } else {
            let start = keys::timed_key(keys::POINT, meta.id, cutoff);
            let end = keys::series_prefix(keys::POINT, meta.id.wrapping_add(1));
            n += self.db.range_in(ks, Bound::Included(&start), series_end(&end, meta.id), false, Some(snapshot))?.count() as u64;
        }
        Ok(n)
    }

    /// Walks the blocks and head points of `series` in `[from, to)` (retention
    /// applied) in time order. With `whole_in` given, a block lying inside
    /// `[from, to)` for which it returns true is handed over as its summary
    /// instead of being read and decoded.
    fn visit(
        &self,
        series: &str,
        from: i64,
        to: i64,
        f: &mut dyn FnMut(query::Visit<'_>) -> Result<()>,
        whole_in: Option<&dyn Fn(i64, i64) -> bool>,
    ) -> Result<()> {
        let Some(ks) = self.keyspace()? else { return Ok(()) };
        let snapshot = self.db.snapshot();
        let Some(meta) = self.meta_in(&ks, series, Some(&snapshot))? else { return Ok(()) };
        let from = from.max(meta.cutoff().unwrap_or(i64::MIN));
        if from >= to {
            return Ok(());
        }
        let id = meta.id;
        let start = keys::timed_key(keys::SUMMARY, id, from);
        let end = keys::series_prefix(keys::SUMMARY, id.wrapping_add(1));
        for item in self.db.range_in(&ks, Bound::Included(&start), series_end(&end, id), false, Some(&snapshot))? {
            let (key, value) = item?;
            let s = Summary::decode(&value)?;
            if s.first_ts >= to {
                break;
            }
            let inside = s.first_ts >= from && s.last_ts < to;
            if inside && whole_in.is_some_and(|w| w(s.first_ts, s.last_ts)) {
                f(query::Visit::Summary(&s))?;
                continue;
            }
            let (t, v) = self.read_block(&ks, id, keys::key_ts(&key)?, Some(&snapshot))?;
            let lo = t.partition_point(|&x| x < from);
            let hi = t.partition_point(|&x| x < to);
            if let (Some(ts), Some(vs)) = (t.get(lo..hi), v.get(lo..hi)) {
                f(query::Visit::Points(ts, vs))?;
            }
        }
        let start = keys::timed_key(keys::POINT, id, from);
        let end = keys::timed_key(keys::POINT, id, to);
        let mut t = Vec::new();
        let mut v = Vec::new();
        for item in self.db.range_in(&ks, Bound::Included(&start), Bound::Excluded(&end), false, Some(&snapshot))? {
            let (key, value) = item?;
            t.push(keys::key_ts(&key)?);
            v.push(point_value(&value)?);
        }
        if !t.is_empty() {
            f(query::Visit::Points(&t, &v))?;
        }
        Ok(())
    }
}

/// Locks striped by store and series name (see [`TimeSeries::retry`]).
static SERIES_LOCKS: [parking_lot::Mutex<()>; 64] = [const { parking_lot::Mutex::new(()) }; 64];

fn series_lock(db: &Db, series: &str) -> &'static parking_lot::Mutex<()> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (db as *const Db as usize).hash(&mut h);
    series.hash(&mut h);
    let i = (h.finish() % SERIES_LOCKS.len() as u64) as usize;
    // In range by the modulo above.
    SERIES_LOCKS.get(i).unwrap_or(&SERIES_LOCKS[0])
}

/// The end of a series' keys of one kind: the next series' prefix, or (for
/// the last possible id) the end of the kind.
fn series_end(next_prefix: &[u8], id: u64) -> Bound<&[u8]> {
    if id == u64::MAX {
        Bound::Unbounded
    } else {
        Bound::Excluded(next_prefix)
    }
}

fn point_value(raw: &[u8]) -> Result<f64> {
    let bytes: [u8; 8] = raw.try_into().map_err(|_| Error::Corruption { file: "time-series record".into(), offset: 0, reason: "point value of the wrong length".into() })?;
    Ok(f64::from_bits(u64::from_le_bytes(bytes)))
}

fn check_window(series: &str, meta: &Meta, ts: i64) -> Result<()> {
    if let Some(newest) = meta.newest {
        let oldest = newest.saturating_sub(meta.window_ms);
        if ts < oldest {
            return Err(Error::InvalidArgument(format!(
                "point at {ts} ms is older than the out-of-order window of series {series:?} allows (newest {newest} ms, window {} ms)",
                meta.window_ms
            )));
        }
    }
    Ok(())
}
