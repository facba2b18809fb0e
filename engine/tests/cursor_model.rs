//! Property test of the seekable cursor: random writes (puts, deletes, range
//! deletes, merges through an appending merge operator, batches), flushes,
//! compactions and snapshots taken in between, then random
//! cursor programs (seeks, seek_for_prev, seeks to either end, next/prev runs
//! that turn in the middle, random bounds) over the store as it is now and over
//! every snapshot. After every cursor step its position must be the one a
//! `BTreeMap` of the same writes gives at that point.
//!
//! Half the cases also run background compaction (tables then reach the
//! middle levels, and compactions run beside live snapshots and cursors); its
//! timing is not replayed, so a failure there may shrink less well.
//!
//! Keys are drawn from 1- to 3-byte strings over a 4-letter alphabet, so keys
//! are prefixes of one another and seek targets fall both on and between keys.
//! `PROPTEST_CASES=<n>` runs more cases than the default 256.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use proptest::prelude::*;
use std::sync::Arc;

use synapsed_storage::{Cursor, Db, IterOptions, MergeError, MergeOperator, Options, SimVfs, Snapshot, WriteBatch, DEFAULT_KEYSPACE};

/// Appends operands to the value (associative; any bytes are valid), so the
/// model of a merge is an append.
struct Append;

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "cursor_model.append"
    }

    fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>, MergeError> {
        Ok([base.unwrap_or_default()].into_iter().chain(operands.iter().copied()).collect::<Vec<_>>().concat())
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Result<Option<Vec<u8>>, MergeError> {
        Ok(Some(operands.concat()))
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Write {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// A range delete of [lower, higher) of the two keys (nothing if equal).
    DeleteRange(Vec<u8>, Vec<u8>),
    Merge(Vec<u8>, Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Flush,
    Compact(Option<Vec<u8>>, Option<Vec<u8>>),
    Snapshot,
}

#[derive(Debug, Clone)]
enum Step {
    First,
    Last,
    Seek(Vec<u8>),
    SeekForPrev(Vec<u8>),
    Next,
    Prev,
}

#[derive(Debug, Clone)]
struct Program {
    /// Which view: 0 is the store now, i > 0 the snapshot (i - 1) mod count.
    view: usize,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    steps: Vec<Step>,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"abcd".to_vec()), 1..=3)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    // Some values long enough that a few hundred bytes fill a tiny memtable.
    prop_oneof![prop::collection::vec(any::<u8>(), 0..8), prop::collection::vec(any::<u8>(), 100..300)]
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        8 => (key(), value()).prop_map(|(k, v)| Write::Put(k, v)),
        4 => key().prop_map(Write::Delete),
        2 => (key(), key()).prop_map(|(a, b)| Write::DeleteRange(a, b)),
        3 => (key(), value()).prop_map(|(k, v)| Write::Merge(k, v)),
        2 => prop::collection::vec((key(), prop::option::of(value())), 1..8).prop_map(Write::Batch),
        1 => Just(Write::Flush),
        1 => (prop::option::of(key()), prop::option::of(key())).prop_map(|(a, b)| Write::Compact(a, b)),
        1 => Just(Write::Snapshot),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::First),
        1 => Just(Step::Last),
        2 => key().prop_map(Step::Seek),
        2 => key().prop_map(Step::SeekForPrev),
        4 => Just(Step::Next),
        4 => Just(Step::Prev),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (0..4usize, prop::option::of(key()), prop::option::of(key()), prop::collection::vec(step(), 1..24))
        .prop_map(|(view, lower, upper, steps)| Program { view, lower, upper, steps })
}

/// The cursor of the model: a position among the keys within the bounds.
struct ModelCursor<'m> {
    model: &'m Model,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    at: Option<Vec<u8>>,
}

impl ModelCursor<'_> {
    /// The keys within the bounds and within (`from`, `to`).
    fn within(&self, from: Bound<Vec<u8>>, to: Bound<Vec<u8>>) -> impl DoubleEndedIterator<Item = &Vec<u8>> + '_ {
        let inside = |k: &Vec<u8>, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>| {
            (match lo {
                Bound::Included(l) => k >= l,
                Bound::Excluded(l) => k > l,
                Bound::Unbounded => true,
            }) && (match hi {
                Bound::Included(h) => k <= h,
                Bound::Excluded(h) => k < h,
                Bound::Unbounded => true,
            })
        };
        let (lower, upper) = (self.lower.clone(), self.upper.clone());
        self.model.keys().filter(move |k| inside(k, &lower, &upper) && inside(k, &from, &to))
    }

    fn apply(&mut self, step: &Step) {
        use Bound::*;
        self.at = match step {
            Step::First => self.within(Unbounded, Unbounded).next().cloned(),
            Step::Last => self.within(Unbounded, Unbounded).next_back().cloned(),
            Step::Seek(k) => self.within(Included(k.clone()), Unbounded).next().cloned(),
            Step::SeekForPrev(k) => self.within(Unbounded, Included(k.clone())).next_back().cloned(),
            Step::Next => self.at.clone().and_then(|at| self.within(Excluded(at), Unbounded).next().cloned()),
            Step::Prev => self.at.clone().and_then(|at| self.within(Unbounded, Excluded(at)).next_back().cloned()),
        };
    }
}

fn run_step(cursor: &mut Cursor, step: &Step) {
    match step {
        Step::First => cursor.seek_to_first(),
        Step::Last => cursor.seek_to_last(),
        Step::Seek(k) => cursor.seek(k),
        Step::SeekForPrev(k) => cursor.seek_for_prev(k),
        Step::Next => cursor.next(),
        Step::Prev => cursor.prev(),
    }
    .unwrap();
}

fn apply_write(db: &Db, model: &mut Model, snapshots: &mut Vec<(Snapshot, Model)>, w: &Write) {
    match w {
        Write::Put(k, v) => {
            db.put(k, v).unwrap();
            model.insert(k.clone(), v.clone());
        }
        Write::Delete(k) => {
            db.delete(k).unwrap();
            model.remove(k);
        }
        Write::DeleteRange(a, b) => {
            let (start, end) = if a <= b { (a, b) } else { (b, a) };
            if start < end {
                db.delete_range(start, end).unwrap();
                model.retain(|k, _| k < start || k >= end);
            }
        }
        Write::Merge(k, v) => {
            db.merge(k, v).unwrap();
            model.entry(k.clone()).or_default().extend_from_slice(v);
        }
        Write::Batch(ops) => {
            let mut batch = WriteBatch::new();
            for (k, v) in ops {
                match v {
                    Some(v) => {
                        batch.put(k, v);
                        model.insert(k.clone(), v.clone());
                    }
                    None => {
                        batch.delete(k);
                        model.remove(k);
                    }
                }
            }
            db.write(batch).unwrap();
        }
        Write::Flush => db.flush().unwrap(),
        Write::Compact(a, b) => db.compact_range(a.as_deref(), b.as_deref()).unwrap(),
        Write::Snapshot => snapshots.push((db.snapshot(), model.clone())),
    }
}

fn check(writes: &[Write], programs: &[Program], background: bool) -> Result<(), TestCaseError> {
    let mut options = Options::tiny_for_tests();
    options.vfs = SimVfs::new();
    options.background_compaction = background;
    let options = options.with_merge_operator(DEFAULT_KEYSPACE, Arc::new(Append));
    let db = Db::create(Path::new("/cursor/db"), &synapsed_storage::Credential::passphrase("cursor model"), options).unwrap();
    let mut model = Model::new();
    let mut snapshots = Vec::new();
    // The cursors opened before the last writes must not see them.
    let (before, after) = writes.split_at(writes.len() / 2);
    for w in before {
        apply_write(&db, &mut model, &mut snapshots, w);
    }
    let mut early = db.cursor(IterOptions::new()).unwrap();
    let early_model = model.clone();
    for w in after {
        apply_write(&db, &mut model, &mut snapshots, w);
    }
    // The cursor opened halfway runs the first program's steps, unbounded.
    if let Some(p) = programs.first() {
        let mut expected = ModelCursor { model: &early_model, lower: Bound::Unbounded, upper: Bound::Unbounded, at: None };
        follow(&mut early, &mut expected, &p.steps, "early cursor")?;
    }
    for (i, p) in programs.iter().enumerate() {
        let mut options = IterOptions::new();
        if let Some(l) = &p.lower {
            options = options.lower_bound(l);
        }
        if let Some(u) = &p.upper {
            options = options.upper_bound(u);
        }
        let (mut cursor, view) = match snapshots.len() {
            0 => (db.cursor(options).unwrap(), &model),
            _ if p.view == 0 => (db.cursor(options).unwrap(), &model),
            n => {
                let (snap, m) = &snapshots[(p.view - 1) % n];
                (db.cursor_at(snap, options).unwrap(), m)
            }
        };
        let mut expected = ModelCursor {
            model: view,
            lower: p.lower.clone().map_or(Bound::Unbounded, Bound::Included),
            upper: p.upper.clone().map_or(Bound::Unbounded, Bound::Excluded),
            at: None,
        };
        follow(&mut cursor, &mut expected, &p.steps, &format!("program {i}"))?;
    }
    Ok(())
}

/// Runs `steps` on the cursor and the model, comparing after each.
fn follow(cursor: &mut Cursor, expected: &mut ModelCursor<'_>, steps: &[Step], what: &str) -> Result<(), TestCaseError> {
    for (n, s) in steps.iter().enumerate() {
        run_step(cursor, s);
        expected.apply(s);
        let want = expected.at.as_ref().map(|k| (k.as_slice(), expected.model[k].as_slice()));
        prop_assert_eq!(cursor.entry(), want, "{} step {} ({:?})", what, n, s);
        prop_assert_eq!(cursor.valid(), want.is_some());
        prop_assert_eq!(cursor.key(), want.map(|(k, _)| k));
        prop_assert_eq!(cursor.value(), want.map(|(_, v)| v));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn cursors_agree_with_a_btreemap(
        writes in prop::collection::vec(write(), 1..120),
        programs in prop::collection::vec(program(), 1..6),
        background in any::<bool>(),
    ) {
        check(&writes, &programs, background)?;
    }
}
