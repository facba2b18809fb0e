//! The query planner and executor.
//!
//! Planning: each top-level condition (the filter's keys, and the members of a
//! top-level `$and`) that a built index can answer becomes a candidate source —
//! equality and `$in` on an ordered or hashed index, ranges on an ordered one,
//! `$text` on the text indexes, an `$or` whose every branch has a source. The
//! planner counts the entries of each candidate (stopping at the smallest count
//! so far) and keeps the most selective; without one it scans every document.
//! Whatever the source, every document is tested against the whole filter, so
//! an index only narrows what is read (its bounds may be wider than the filter).
//!
//! Order: by `_id`, by a sort field (then `_id`), or by BM25 score (best first,
//! then `_id`); descending is the exact reverse of ascending. A sort on an
//! ordered-indexed field that the chosen source scans reads in index order and
//! stops at the limit; otherwise matches are sorted in memory.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;

use serde_json::{json, Value};

use super::filter::{Filter, Op};
use super::prefilter::Prefilter;
use super::json::{self as docjson, class_bounds, compare, is_scalar};
use super::store::{self, Collection, Defs, IndexDef};
use super::text;
use super::{Explain, IndexKind, Query, QueryResult};
use crate::db::{Db, Snapshot};
use crate::error::{Error, Result};

/// A key range of the entries keyspace.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Where candidate documents come from.
enum Source<'d> {
    /// Entries of one index in these ranges.
    Index { def: &'d IndexDef, ranges: Vec<KeyRange> },
    /// Documents holding every term, through the text indexes.
    Text { defs: Vec<&'d IndexDef>, terms: Vec<String> },
    /// Any branch's documents.
    Union(Vec<Source<'d>>),
}

impl Source<'_> {
    fn fields(&self, out: &mut Vec<String>) {
        let mut add = |f: &str| {
            if !out.iter().any(|o| o == f) {
                out.push(f.to_owned());
            }
        };
        match self {
            Source::Index { def, .. } => add(&def.field),
            Source::Text { defs, .. } => defs.iter().for_each(|d| add(&d.field)),
            Source::Union(parts) => parts.iter().for_each(|p| p.fields(out)),
        }
    }
}

fn successor(mut key: Vec<u8>) -> Bound<Vec<u8>> {
    while let Some(last) = key.pop() {
        if last < 0xff {
            key.push(last + 1);
            return Bound::Excluded(key);
        }
    }
    Bound::Unbounded
}

fn prefixed(def: &IndexDef, token: &[u8]) -> Vec<u8> {
    let mut key = def.prefix().to_vec();
    key.extend_from_slice(token);
    key
}

/// The range of every entry whose token is exactly `token`.
fn point(def: &IndexDef, token: &[u8]) -> KeyRange {
    let key = prefixed(def, token);
    (Bound::Included(key.clone()), successor(key))
}

/// The source of one condition, if a built index answers it.
fn source_of<'d>(filter: &Filter, defs: &'d Defs) -> Option<Source<'d>> {
    let index_on = |field: &str| defs.list.iter().find(|d| d.ready && d.field == field && d.kind != IndexKind::Text);
    match filter {
        Filter::Cmp { field, op: Op::Eq, value } => {
            let def = index_on(field)?;
            let token = def.value_token(value)?;
            Some(Source::Index { def, ranges: vec![point(def, &token)] })
        }
        Filter::In { field, values } => {
            let def = index_on(field)?;
            let mut tokens: Vec<Vec<u8>> = values.iter().map(|v| def.value_token(v)).collect::<Option<_>>()?;
            tokens.sort();
            tokens.dedup();
            Some(Source::Index { def, ranges: tokens.iter().map(|t| point(def, t)).collect() })
        }
        Filter::Cmp { field, op, value } if *op != Op::Ne => {
            let def = index_on(field).filter(|d| d.kind == IndexKind::Ordered)?;
            if !is_scalar(value) {
                return None;
            }
            let token = def.value_token(value)?;
            let (class_lo, class_hi) = class_bounds(value);
            let lo = match op {
                Op::Gt => successor(prefixed(def, &token)),
                Op::Gte => Bound::Included(prefixed(def, &token)),
                _ => Bound::Included(prefixed(def, &class_lo)),
            };
            let hi = match op {
                Op::Lt => Bound::Excluded(prefixed(def, &token)),
                Op::Lte => successor(prefixed(def, &token)),
                _ => Bound::Excluded(prefixed(def, &class_hi)),
            };
            Some(Source::Index { def, ranges: vec![(bound_to_inclusive(lo), hi)] })
        }
        Filter::Element { conds, .. } => {
            // Points of an equality or $in first; else the ranges' intersection.
            let sources: Vec<Source> = conds.iter().filter_map(|c| source_of(c, defs)).collect();
            if let Some(i) = conds.iter().position(|c| matches!(c, Filter::In { .. } | Filter::Cmp { op: Op::Eq, .. })) {
                return conds.get(i).and_then(|c| source_of(c, defs));
            }
            merge_ranges(sources).into_iter().next()
        }
        Filter::Text { words } => {
            let text_defs: Vec<&IndexDef> = defs.list.iter().filter(|d| d.ready && d.kind == IndexKind::Text).collect();
            (!text_defs.is_empty()).then(|| Source::Text { defs: text_defs, terms: words.clone() })
        }
        Filter::Or(branches) => branches.iter().map(|b| best_source_unranked(b, defs)).collect::<Option<Vec<_>>>().map(Source::Union),
        Filter::And(parts) => best_source_unranked(&Filter::And(parts.clone()), defs),
        _ => None,
    }
}

/// A `successor` lower bound is exclusive of a key no entry has; make it the
/// inclusive start it stands for.
fn bound_to_inclusive(b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match b {
        Bound::Excluded(k) => Bound::Included(k),
        other => other,
    }
}

/// Conditions ANDed at the top of a filter.
fn conjuncts(filter: &Filter) -> Vec<&Filter> {
    match filter {
        Filter::And(parts) => parts.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

/// The first source among the conjuncts (no counting: for `$or` branches).
fn best_source_unranked<'d>(filter: &Filter, defs: &'d Defs) -> Option<Source<'d>> {
    conjuncts(filter).into_iter().find_map(|c| match c {
        Filter::And(_) => None,
        other => source_of(other, defs),
    })
}

/// Joins the single-range sources of one index (`$gte` and `$lt` of one
/// operator object, which one value must meet together) into one range.
fn merge_ranges(sources: Vec<Source<'_>>) -> Vec<Source<'_>> {
    let mut out: Vec<Source> = Vec::new();
    for source in sources {
        if let Source::Index { def, ranges } = &source {
            if let [(lo, hi)] = ranges.as_slice() {
                let same = out.iter_mut().find_map(|o| match o {
                    Source::Index { def: d, ranges: r } if d.id == def.id && r.len() == 1 => r.first_mut(),
                    _ => None,
                });
                if let Some(range) = same {
                    if lower_after(lo, &range.0) {
                        range.0 = lo.clone();
                    }
                    if upper_before(hi, &range.1) {
                        range.1 = hi.clone();
                    }
                    continue;
                }
            }
        }
        out.push(source);
    }
    out
}

/// Whether lower bound `a` starts after lower bound `b`.
fn lower_after(a: &Bound<Vec<u8>>, b: &Bound<Vec<u8>>) -> bool {
    match (a, b) {
        (Bound::Unbounded, _) => false,
        (_, Bound::Unbounded) => true,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            x > y || (x == y && matches!(a, Bound::Excluded(_)))
        }
    }
}

/// Whether upper bound `a` ends before upper bound `b`.
fn upper_before(a: &Bound<Vec<u8>>, b: &Bound<Vec<u8>>) -> bool {
    match (a, b) {
        (Bound::Unbounded, _) => false,
        (_, Bound::Unbounded) => true,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            x < y || (x == y && matches!(a, Bound::Excluded(_)))
        }
    }
}

/// Counts entries of a source, stopping once `cap` is passed.
fn count(db: &Db, coll: &Collection, snap: &Snapshot, source: &Source, cap: u64) -> Result<u64> {
    match source {
        Source::Index { ranges, .. } => {
            let mut n = 0;
            for (lo, hi) in ranges {
                let mut it = db.range_in(&coll.entries, as_ref(lo), as_ref(hi), false, Some(snap))?;
                while let Some(item) = it.next_ref() {
                    item?;
                    n += 1;
                    if n > cap {
                        return Ok(n);
                    }
                }
            }
            Ok(n)
        }
        Source::Text { defs, terms } => {
            let mut best = u64::MAX;
            for term in terms {
                let mut n = 0;
                for def in defs {
                    n += count(db, coll, snap, &Source::Index { def, ranges: vec![point(def, &def.term_token(term))] }, cap.min(best))?;
                }
                best = best.min(n);
            }
            Ok(best)
        }
        Source::Union(parts) => {
            let mut n = 0;
            for p in parts {
                n += count(db, coll, snap, p, cap.saturating_sub(n))?;
                if n > cap {
                    break;
                }
            }
            Ok(n)
        }
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The `_id`s a source yields, with text term frequencies when it is a text source.
fn candidates(db: &Db, coll: &Collection, snap: &Snapshot, source: &Source, out: &mut BTreeSet<Vec<u8>>) -> Result<()> {
    match source {
        Source::Index { def, ranges } => {
            for (lo, hi) in ranges {
                let mut it = db.range_in(&coll.entries, as_ref(lo), as_ref(hi), false, Some(snap))?;
                while let Some(item) = it.next_ref() {
                    let (key, value) = item?;
                    if let Some(id) = def.entry_id(key, value) {
                        out.insert(id.to_vec());
                    }
                }
            }
        }
        Source::Text { defs, terms } => {
            let mut acc: Option<BTreeSet<Vec<u8>>> = None;
            for term in terms {
                let mut ids = BTreeSet::new();
                for def in defs {
                    candidates(db, coll, snap, &Source::Index { def, ranges: vec![point(def, &def.term_token(term))] }, &mut ids)?;
                }
                acc = Some(match acc {
                    None => ids,
                    Some(prev) => prev.intersection(&ids).cloned().collect(),
                });
            }
            out.extend(acc.unwrap_or_default());
        }
        Source::Union(parts) => {
            for p in parts {
                candidates(db, coll, snap, p, out)?;
            }
        }
    }
    Ok(())
}

/// The sort key of a document and its `_id`: what order and cursors compare.
#[derive(Clone)]
struct Position {
    key: Value,
    id: String,
}

impl Position {
    fn cmp(&self, other: &Position) -> Ordering {
        compare(&self.key, &other.key).then_with(|| self.id.as_bytes().cmp(other.id.as_bytes()))
    }

    fn encode(&self) -> String {
        json!([self.key, self.id]).to_string().bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(cursor: &str) -> Result<Position> {
        let bad = || Error::InvalidArgument("malformed query cursor".into());
        if cursor.len() & 1 == 1 || !cursor.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..cursor.len() / 2)
            .map(|i| cursor.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        match value.as_array().map(Vec::as_slice) {
            Some([key, Value::String(id)]) => Ok(Position { key: key.clone(), id: id.clone() }),
            _ => Err(bad()),
        }
    }
}

/// How results are ordered.
enum Order {
    Id,
    Field(String),
    Score,
}

/// Runs a query (see the module comment).
pub(crate) fn run(db: &Db, name: &str, query: &Query) -> Result<QueryResult> {
    let filter = Filter::parse(&query.filter)?;
    if let Some((field, _)) = &query.sort {
        docjson::check_path(field)?;
        if query.rank {
            return Err(Error::InvalidArgument("a query is either sorted on a field or ranked, not both".into()));
        }
    }
    if query.rank && !filter.has_text() {
        return Err(Error::InvalidArgument("ranking needs a $text condition".into()));
    }
    let cursor = query.cursor.as_deref().map(Position::decode).transpose()?;
    let limit = query.limit.unwrap_or(usize::MAX);
    let descending = query.sort.as_ref().is_some_and(|s| s.1) || query.rank;
    let order = match (&query.sort, query.rank) {
        (Some((f, _)), _) => Order::Field(f.clone()),
        (None, true) => Order::Score,
        (None, false) => Order::Id,
    };
    let Some(coll) = store::collection(db, name, false)? else {
        if filter.has_text() {
            return Err(Error::InvalidArgument(format!("$text needs a text index, and collection {name:?} has none")));
        }
        let explain = Explain { index: None, examined: 0, returned: 0 };
        return Ok(QueryResult { documents: Vec::new(), scores: query.rank.then(Vec::new), next_cursor: None, explain });
    };
    let snap = db.snapshot();
    let defs = store::load_defs_shared(db, &coll, &snap)?;
    let text_fields = defs.text_fields();
    if filter.has_text() && !defs.list.iter().any(|d| d.ready && d.kind == IndexKind::Text) {
        return Err(Error::InvalidArgument(format!("$text needs a text index, and collection {name:?} has none")));
    }

    // The most selective source among the top-level conditions.
    let mut best: Option<(Source, u64)> = None;
    let mut sources: Vec<Source> = conjuncts(&filter).into_iter().filter_map(|c| source_of(c, &defs)).collect();
    if sources.len() == 1 {
        // One candidate: nothing to choose, so nothing to count.
        best = sources.pop().map(|s| (s, 0));
    }
    for source in sources {
        {
            let cap = best.as_ref().map_or(u64::MAX, |b| b.1);
            let n = count(db, &coll, &snap, &source, cap)?;
            let better = match &best {
                None => true,
                Some(b) => n < b.1,
            };
            if better {
                best = Some((source, n));
            }
        }
    }
    let index = best.as_ref().map(|(s, _)| {
        let mut fields = Vec::new();
        s.fields(&mut fields);
        fields.join(",")
    });
    let mut exec = Exec { db, coll: &coll, snap: &snap, filter: &filter, text_fields: &text_fields, examined: 0 };

    // Index order answers a sort on the field the chosen ordered index scans.
    if let (Order::Field(field), Some((Source::Index { def, ranges }, _))) = (&order, &best) {
        if def.kind == IndexKind::Ordered && def.field == *field {
            if let Some(found) = exec.in_index_order(def, ranges, descending, cursor.as_ref(), limit)? {
                return Ok(finish(found, None, limit, index, exec.examined));
            }
            exec.examined = 0;
        }
    }

    let mut matches: Vec<(Position, Value)> = Vec::new();
    let early_stop = matches!(order, Order::Id) && !descending;
    let consider = |exec: &mut Exec, id: &[u8], doc: Value, matches: &mut Vec<(Position, Value)>| -> Result<bool> {
        exec.examined += 1;
        if !exec.filter.matches(&doc, exec.text_fields) {
            return Ok(true);
        }
        let key = match &order {
            Order::Id | Order::Score => Value::Null,
            Order::Field(f) => match docjson::lookup(&doc, f) {
                Some(v) => v.clone(),
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "cannot sort on {f}: document {:?} has no such field",
                        String::from_utf8_lossy(id)
                    )))
                }
            },
        };
        matches.push((Position { key, id: String::from_utf8_lossy(id).into_owned() }, doc));
        Ok(!(early_stop && matches.len() >= limit))
    };
    match &best {
        Some((source, _)) => {
            let mut ids = BTreeSet::new();
            candidates(db, &coll, &snap, source, &mut ids)?;
            let start = if early_stop { cursor.as_ref().map(|c| c.id.as_bytes().to_vec()) } else { None };
            for id in ids {
                if start.as_ref().is_some_and(|s| id <= *s) {
                    continue;
                }
                let Some(raw) = db.get_at_in(&coll.bodies, &id, &snap)? else { continue };
                let doc = store::decode_body(&raw)?;
                if !consider(&mut exec, &id, doc, &mut matches)? {
                    break;
                }
            }
        }
        None => {
            let start = match (&cursor, early_stop) {
                (Some(c), true) => Bound::Excluded(c.id.as_bytes().to_vec()),
                _ => Bound::Unbounded,
            };
            let mut it = db.range_in(&coll.bodies, as_ref(&start), Bound::Unbounded, false, Some(&snap))?;
            let prefilter = Prefilter::new(&filter);
            while let Some(item) = it.next_ref() {
                let (id, raw) = item?;
                if store::body_text(raw).is_some_and(|text| !prefilter.may_match(text)) {
                    // Tested on its bytes: it cannot match, no need to parse it.
                    exec.examined += 1;
                    continue;
                }
                let doc = store::decode_body(raw)?;
                let id = id.to_vec();
                if !consider(&mut exec, &id, doc, &mut matches)? {
                    break;
                }
            }
        }
    }

    let mut scores = None;
    if let Order::Score = order {
        let s = exec.scores(&defs, &filter, &matches)?;
        for ((pos, _), score) in matches.iter_mut().zip(&s) {
            pos.key = json!(score);
        }
        scores = Some(());
    }
    matches.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        matches.reverse();
    }
    if let Some(c) = &cursor {
        matches.retain(|(p, _)| if descending { p.cmp(c) == Ordering::Less } else { p.cmp(c) == Ordering::Greater });
    }
    Ok(finish(matches, scores, limit, index, exec.examined))
}

fn finish(mut matches: Vec<(Position, Value)>, scores: Option<()>, limit: usize, index: Option<String>, examined: u64) -> QueryResult {
    let more = matches.len() > limit;
    matches.truncate(limit);
    let next_cursor = if matches.len() == limit && limit > 0 { matches.last().map(|(p, _)| p.encode()) } else { None };
    let _ = more;
    let scores = scores.map(|()| matches.iter().map(|(p, _)| p.key.as_f64().unwrap_or(0.0)).collect());
    let returned = matches.len() as u64;
    QueryResult { documents: matches.into_iter().map(|(_, d)| d).collect(), scores, next_cursor, explain: Explain { index, examined, returned } }
}

struct Exec<'a> {
    db: &'a Db,
    coll: &'a Collection,
    snap: &'a Snapshot,
    filter: &'a Filter,
    text_fields: &'a [String],
    examined: u64,
}

impl Exec<'_> {
    /// Reads an ordered index's ranges in order; `None` when a document's sort
    /// value is an array (its entries do not give the document's place).
    fn in_index_order(
        &mut self,
        def: &IndexDef,
        ranges: &[KeyRange],
        descending: bool,
        cursor: Option<&Position>,
        limit: usize,
    ) -> Result<Option<Vec<(Position, Value)>>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut ordered: Vec<&KeyRange> = ranges.iter().collect();
        if descending {
            ordered.reverse();
        }
        for (lo, hi) in ordered {
            let mut it = self.db.range_in(&self.coll.entries, as_ref(lo), as_ref(hi), descending, Some(self.snap))?;
            while let Some(item) = it.next_ref() {
                let (key, value) = item?;
                let Some(id) = def.entry_id(key, value) else { continue };
                if !seen.insert(id.to_vec()) {
                    continue;
                }
                let id = id.to_vec();
                let Some(raw) = self.db.get_at_in(&self.coll.bodies, &id, self.snap)? else { continue };
                let doc = store::decode_body(&raw)?;
                self.examined += 1;
                let Some(v) = docjson::lookup(&doc, &def.field) else { continue };
                if !is_scalar(v) {
                    return Ok(None);
                }
                if !self.filter.matches(&doc, self.text_fields) {
                    continue;
                }
                let pos = Position { key: v.clone(), id: String::from_utf8_lossy(&id).into_owned() };
                if let Some(c) = cursor {
                    let o = pos.cmp(c);
                    if (descending && o != Ordering::Less) || (!descending && o != Ordering::Greater) {
                        continue;
                    }
                }
                out.push((pos, doc));
                if out.len() >= limit {
                    return Ok(Some(out));
                }
            }
        }
        Ok(Some(out))
    }

    /// BM25 scores of the matches over the filter's `$text` words.
    fn scores(&self, defs: &Defs, filter: &Filter, matches: &[(Position, Value)]) -> Result<Vec<f64>> {
        let mut words = BTreeSet::new();
        collect_words(filter, &mut words);
        let mut scores = vec![0.0; matches.len()];
        for def in defs.list.iter().filter(|d| d.ready && d.kind == IndexKind::Text) {
            let (docs, total) = store::load_stats(self.db, self.coll, def.id, Some(self.snap))?;
            let avg = if docs == 0 { 0.0 } else { total as f64 / docs as f64 };
            for word in &words {
                let df = count(self.db, self.coll, self.snap, &Source::Index { def, ranges: vec![point(def, &def.term_token(word))] }, u64::MAX)?;
                for (score, (_, doc)) in scores.iter_mut().zip(matches) {
                    let (tf, len) = text::term_frequencies(doc, &def.field);
                    if let Some(&n) = tf.get(word) {
                        *score += text::bm25(n, len, df, docs, avg);
                    }
                }
            }
        }
        Ok(scores)
    }
}

fn collect_words(filter: &Filter, out: &mut BTreeSet<String>) {
    match filter {
        Filter::And(parts) | Filter::Or(parts) => parts.iter().for_each(|p| collect_words(p, out)),
        Filter::Text { words } => out.extend(words.iter().cloned()),
        _ => {}
    }
}
