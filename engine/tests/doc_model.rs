//! Model test of the document store: random puts, deletes, imports, index
//! creations and queries (every operator, sorts, limits, paging through
//! cursors) against an in-memory evaluator written independently of the
//! engine's, with clean reopens and simulated power losses between steps. After
//! every step that writes, a checker walks documents and index entries and
//! demands that they agree.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Db, Error, Options, SimVfs};

const COLL: &str = "m";
const FIELDS: [&str; 4] = ["a", "b", "c.d", "t"];

#[derive(Debug, Clone)]
enum Step {
    Put(u8, Value),
    Import(Vec<(u8, Value)>),
    Delete(u8),
    Index(usize, u8, bool),
    Query(Value, Option<(usize, bool)>, Option<usize>),
    Reopen,
    Crash,
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        8 => (0i64..5).prop_map(|n| json!(n)),
        1 => (-1i64..4).prop_map(|n| json!(n as f64 + 0.5)),
        2 => (0i64..5).prop_map(|n| serde_json::from_str::<Value>(&format!("{n}.0")).unwrap()),
        3 => prop::sample::select(vec!["x", "y", "z", "xy"]).prop_map(|s| json!(s)),
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![4 => scalar(), 1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array)]
}

fn document() -> impl Strategy<Value = Value> {
    (
        prop::option::of(field_value()),
        prop::option::of(field_value()),
        prop::option::of(field_value()),
        prop::sample::subsequence(vec!["red", "Green", "blue", "RED", "fox"], 0..4),
    )
        .prop_map(|(a, b, d, words)| {
            let mut o = serde_json::Map::new();
            if let Some(a) = a {
                o.insert("a".into(), a);
            }
            if let Some(b) = b {
                o.insert("b".into(), b);
            }
            if let Some(d) = d {
                o.insert("c".into(), json!({"d": d}));
            }
            if !words.is_empty() {
                o.insert("t".into(), json!(words.join(" ")));
            }
            Value::Object(o)
        })
}

fn condition() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec!["a", "b", "c.d"]);
    prop_oneof![
        (field.clone(), scalar()).prop_map(|(f, v)| json!({f: v})),
        (field.clone(), prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte", "$ne"]), scalar()).prop_map(|(f, op, v)| json!({f: {op: v}})),
        (field.clone(), prop::collection::vec(scalar(), 1..3)).prop_map(|(f, v)| json!({f: {"$in": v}})),
        (field.clone(), any::<bool>()).prop_map(|(f, b)| json!({f: {"$exists": b}})),
        (field, scalar(), scalar()).prop_map(|(f, lo, hi)| json!({f: {"$gte": lo, "$lt": hi}})),
        prop::sample::select(vec!["red", "fox GREEN", "blue red"]).prop_map(|w| json!({"$text": w})),
    ]
}

fn filter() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        condition(),
        prop::collection::vec(condition(), 2..4).prop_map(|c| json!({"$and": c})),
        prop::collection::vec(condition(), 2..4).prop_map(|c| json!({"$or": c})),
        (condition(), prop::collection::vec(condition(), 2..3)).prop_map(|(a, o)| {
            let mut m = a.as_object().unwrap().clone();
            m.insert("$or".into(), json!(o));
            Value::Object(m)
        }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u8..12, document()).prop_map(|(i, d)| Step::Put(i, d)),
        2 => prop::collection::vec((0u8..12, document()), 1..6).prop_map(Step::Import),
        3 => (0u8..12).prop_map(Step::Delete),
        4 => (0usize..FIELDS.len(), 0u8..3, prop::bool::weighted(0.2)).prop_map(|(f, k, u)| Step::Index(f, k, u)),
        8 => (filter(), prop::option::of((0usize..3, any::<bool>())), prop::option::of(1usize..5)).prop_map(|(f, s, l)| Step::Query(f, s, l)),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
    ]
}

// ---- The model's own evaluator (independent of the engine's). ----

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(false) => 1,
        Value::Bool(true) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

fn cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().unwrap().partial_cmp(&y.as_f64().unwrap()).unwrap(),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            x.iter().zip(y).map(|(p, q)| cmp(p, q)).find(|o| o.is_ne()).unwrap_or(x.len().cmp(&y.len()))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |d, p| d.as_object()?.get(p))
}

fn any_of(v: Option<&Value>, f: &dyn Fn(&Value) -> bool) -> bool {
    match v {
        None => false,
        Some(v) => f(v) || v.as_array().is_some_and(|a| a.iter().any(f)),
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    rank(a) == rank(b) || (rank(a) <= 2 && rank(a) >= 1 && rank(b) <= 2 && rank(b) >= 1)
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_lowercase).collect()
}

fn eval(filter: &Value, doc: &Value, text_indexed: bool) -> bool {
    filter.as_object().unwrap().iter().all(|(k, v)| match k.as_str() {
        "$and" => v.as_array().unwrap().iter().all(|f| eval(f, doc, text_indexed)),
        "$or" => v.as_array().unwrap().iter().any(|f| eval(f, doc, text_indexed)),
        "$text" => {
            let have = get(doc, "t").and_then(Value::as_str).map(words).unwrap_or_default();
            text_indexed && words(v.as_str().unwrap()).iter().all(|w| have.contains(w))
        }
        field => {
            let got = get(doc, field);
            match v.as_object().filter(|o| o.keys().all(|k| k.starts_with('$'))) {
                None => any_of(got, &|x| cmp(x, v).is_eq()),
                // The positive operators of one object hold on one value or element.
                Some(ops) => {
                    let positive: Vec<(&String, &Value)> = ops.iter().filter(|(op, _)| !["$ne", "$exists"].contains(&op.as_str())).collect();
                    let holds = |op: &str, x: &Value, arg: &Value| match op {
                        "$in" => arg.as_array().unwrap().iter().any(|a| cmp(x, a).is_eq()),
                        "$gt" => same_type(x, arg) && cmp(x, arg).is_gt(),
                        "$gte" => same_type(x, arg) && cmp(x, arg).is_ge(),
                        "$lt" => same_type(x, arg) && cmp(x, arg).is_lt(),
                        "$lte" => same_type(x, arg) && cmp(x, arg).is_le(),
                        other => panic!("model has no {other}"),
                    };
                    let positive_ok = positive.is_empty() || any_of(got, &|x| positive.iter().all(|(op, arg)| holds(op, x, arg)));
                    positive_ok
                        && ops.iter().all(|(op, arg)| match op.as_str() {
                            "$ne" => !any_of(got, &|x| cmp(x, arg).is_eq()),
                            "$exists" => got.is_some() == arg.as_bool().unwrap(),
                            _ => true,
                        })
                }
            }
        }
    })
}

struct Harness {
    sim: Arc<SimVfs>,
    db: Option<Db>,
    model: BTreeMap<String, Value>,
    /// field -> (kind, unique) of the indexes created.
    indexes: BTreeMap<String, (u8, bool)>,
}

fn options(sim: &Arc<SimVfs>) -> Options {
    common::options().with_vfs(sim.clone())
}

impl Harness {
    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    fn text_indexed(&self) -> bool {
        self.indexes.get("t").is_some_and(|(k, _)| *k == 2)
    }

    fn unique_clash(&self, staged: &BTreeMap<String, Value>) -> bool {
        self.indexes.iter().filter(|(_, (_, u))| *u).any(|(field, _)| {
            let mut seen: Vec<(Value, &String)> = Vec::new();
            staged.iter().any(|(id, doc)| {
                let vals: Vec<Value> = match get(doc, field) {
                    None => vec![],
                    Some(Value::Array(a)) => a.iter().filter(|v| !v.is_array() && !v.is_object()).cloned().collect(),
                    Some(v) if !v.is_object() => vec![v.clone()],
                    _ => vec![],
                };
                let mut clash = false;
                for v in vals {
                    if seen.iter().any(|(s, other)| cmp(s, &v).is_eq() && *other != id) {
                        clash = true;
                    }
                    seen.push((v, id));
                }
                clash
            })
        })
    }

    fn write(&mut self, docs: Vec<(u8, Value)>) {
        // A batch applies its documents in order: a clash at any point refuses it.
        let mut staged = self.model.clone();
        let mut clash = false;
        let docs: Vec<Value> = docs
            .into_iter()
            .map(|(i, mut d)| {
                d["_id"] = json!(format!("d{i:02}"));
                staged.insert(format!("d{i:02}"), d.clone());
                clash = clash || self.unique_clash(&staged);
                d
            })
            .collect();
        match self.db().docs().import(COLL, &docs) {
            Ok(_) => {
                assert!(!clash, "a unique clash was accepted");
                self.model = staged;
            }
            Err(Error::UniqueViolation { .. }) => assert!(clash, "a unique violation without a clash"),
            Err(e) => panic!("import: {e}"),
        }
    }

    fn check(&self) {
        let report = self.db().docs().check(COLL).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.documents as usize, self.model.len());
    }

    fn query(&self, filter: &Value, sort: Option<(usize, bool)>, limit: Option<usize>) {
        let text = filter.to_string().contains("$text");
        let sort_field = sort.map(|(f, d)| (FIELDS[f], d));
        let mut expected: Vec<&Value> = self.model.values().filter(|d| eval(filter, d, true)).collect();
        let mut q = Query::new(filter.clone());
        if let Some((f, d)) = sort_field {
            q = q.with_sort(f, d);
        }
        let run = |q: &Query| self.db().docs().query(COLL, q);
        if text && !self.text_indexed() {
            assert!(matches!(run(&q), Err(Error::InvalidArgument(_))), "$text without a text index");
            return;
        }
        if let Some((f, desc)) = sort_field {
            if expected.iter().any(|d| get(d, f).is_none()) {
                assert!(matches!(run(&q), Err(Error::InvalidArgument(_))), "sort on a missing field");
                return;
            }
            expected.sort_by(|a, b| cmp(get(a, f).unwrap(), get(b, f).unwrap()).then_with(|| a["_id"].as_str().cmp(&b["_id"].as_str())));
            if desc {
                expected.reverse();
            }
        }
        let want: Vec<&str> = expected.iter().map(|d| d["_id"].as_str().unwrap()).collect();
        // Page through with the limit, following cursors.
        let mut got: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut page_q = q.clone();
            if let Some(l) = limit {
                page_q = page_q.with_limit(l);
            }
            if let Some(c) = cursor.take() {
                page_q = page_q.with_cursor(c);
            }
            let page = run(&page_q).unwrap_or_else(|e| panic!("query {filter} sort {sort_field:?}: {e}"));
            assert_eq!(page.explain.returned as usize, page.documents.len());
            assert!(page.explain.examined >= page.explain.returned);
            for d in &page.documents {
                assert_eq!(Some(d), self.model.get(d["_id"].as_str().unwrap()));
            }
            got.extend(page.documents.iter().map(|d| d["_id"].as_str().unwrap().to_owned()));
            match page.next_cursor {
                Some(c) if limit.is_some() => cursor = Some(c),
                _ => break,
            }
        }
        if std::env::var_os("DOC_MODEL_TRACE").is_some() {
            eprintln!("query {filter} sort {sort_field:?} limit {limit:?}: {} of {}", want.len(), self.model.len());
        }
        assert_eq!(got, want, "query {filter} sort {sort_field:?} limit {limit:?}");
    }

    fn apply(&mut self, step: Step, dir: &Path) {
        match step {
            Step::Put(i, d) => self.write(vec![(i, d)]),
            Step::Import(docs) => self.write(docs),
            Step::Delete(i) => {
                let id = format!("d{i:02}");
                assert_eq!(self.db().docs().delete(COLL, &id).unwrap(), self.model.remove(&id).is_some());
            }
            Step::Index(f, kind, unique) => {
                let field = FIELDS[f];
                let kind = if field == "t" { 2 } else { u8::from(kind == 1) };
                let unique = unique && kind != 2;
                let spec = match kind {
                    0 => IndexSpec::ordered(field),
                    1 => IndexSpec::hashed(field),
                    _ => IndexSpec::text(field),
                }
                .with_unique(unique);
                let r = self.db().docs().create_index(COLL, &spec);
                match self.indexes.get(field) {
                    Some(&(k, u)) if (k, u) != (kind, unique) => assert!(matches!(r, Err(Error::InvalidArgument(_)))),
                    Some(_) => r.unwrap(),
                    None => {
                        self.indexes.insert(field.to_owned(), (kind, unique));
                        let clash = self.unique_clash(&self.model);
                        match r {
                            Ok(()) => assert!(!clash),
                            Err(Error::UniqueViolation { .. }) => {
                                assert!(clash);
                                self.indexes.remove(field);
                            }
                            Err(e) => panic!("create_index: {e}"),
                        }
                    }
                }
            }
            Step::Query(f, s, l) => self.query(&f, s, l),
            Step::Reopen => {
                self.db.take().unwrap().close().unwrap();
                self.db = Some(Db::open(dir, &common::cred(), options(&self.sim)).unwrap());
            }
            Step::Crash => {
                self.sim.crash();
                drop(self.db.take());
                self.db = Some(Db::open(dir, &common::cred(), options(&self.sim)).unwrap());
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("DOC_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
}

proptest! {
    // DOC_MODEL_CASES=N runs more cases (CI runs 64, about half a second).
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn document_store_matches_the_model(steps in prop::collection::vec(step(), 1..80)) {
        let sim = SimVfs::new();
        let dir = Path::new("/doc-model/db");
        let db = Db::create(dir, &common::cred(), options(&sim)).unwrap();
        let mut h = Harness { sim, db: Some(db), model: BTreeMap::new(), indexes: BTreeMap::new() };
        for step in steps {
            let writes = !matches!(step, Step::Query(..));
            h.apply(step, dir);
            if writes {
                h.check();
            }
        }
        h.db.take().unwrap().close().unwrap();
    }
}
