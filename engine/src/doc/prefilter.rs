//! A byte-level test run on a stored body before it is parsed: a filter whose
//! top-level conditions include an equality (or `$in`) on strings can only
//! match a document whose JSON text contains one of those strings as JSON
//! writes it, quotes included. Bodies are stored as `serde_json` writes them,
//! and a string written by it is always the same bytes, so a body without
//! the bytes cannot match and needs no parsing; a body with them is parsed
//! and tested as usual (the bytes may sit in a key or another field).

use memchr::memmem::Finder;
use serde_json::Value;

use super::filter::{Filter, Op};

/// For each top-level condition that has them, the JSON texts of its strings:
/// a body that contains none of one condition's texts cannot match.
pub(crate) struct Prefilter {
    groups: Vec<Vec<Finder<'static>>>,
}

impl Prefilter {
    /// The prefilter of `filter` (empty when no condition has strings).
    pub(crate) fn new(filter: &Filter) -> Prefilter {
        let mut groups = Vec::new();
        collect(filter, &mut groups);
        Prefilter { groups }
    }

    /// Whether the body text may match (false: it cannot).
    pub(crate) fn may_match(&self, body: &[u8]) -> bool {
        self.groups.iter().all(|g| g.iter().any(|f| f.find(body).is_some()))
    }
}

fn literal(v: &Value) -> Option<Finder<'static>> {
    match v {
        Value::String(_) => serde_json::to_vec(v).ok().map(|text| Finder::new(&text).into_owned()),
        _ => None,
    }
}

fn collect(filter: &Filter, out: &mut Vec<Vec<Finder<'static>>>) {
    match filter {
        Filter::And(parts) => parts.iter().for_each(|p| collect(p, out)),
        Filter::Cmp { op: Op::Eq, value, .. } => out.extend(literal(value).map(|f| vec![f])),
        Filter::In { values, .. } => {
            if let Some(group) = values.iter().map(literal).collect::<Option<Vec<_>>>() {
                if !group.is_empty() {
                    out.push(group);
                }
            }
        }
        Filter::Element { conds, .. } => conds.iter().for_each(|c| collect(c, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn pre(filter: Value) -> Prefilter {
        Prefilter::new(&Filter::parse(&filter).unwrap())
    }

    #[test]
    fn only_bodies_without_the_strings_are_ruled_out() {
        let body = |d: Value| serde_json::to_vec(&d).unwrap();
        let p = pre(json!({"cat": "c1", "n": {"$gt": 3}}));
        assert!(p.may_match(&body(json!({"_id": "a", "cat": "c1"}))));
        assert!(p.may_match(&body(json!({"_id": "a", "cat": ["x", "c1"]}))));
        assert!(p.may_match(&body(json!({"_id": "a", "other": "c1"}))), "a false positive is fine");
        assert!(!p.may_match(&body(json!({"_id": "a", "cat": "c10"}))), "quotes included");
        assert!(!p.may_match(&body(json!({"_id": "a", "cat": "C1"}))));
        let p = pre(json!({"s": "a\"b\\é\n"}));
        assert!(p.may_match(&body(json!({"_id": "x", "s": "a\"b\\é\n"}))), "escapes as serde_json writes them");
        let p = pre(json!({"$and": [{"a": {"$in": ["x", "y"]}}, {"b": "z"}]}));
        assert!(p.may_match(&body(json!({"_id": "1", "a": "y", "b": "z"}))));
        assert!(!p.may_match(&body(json!({"_id": "1", "a": "w", "b": "z"}))));
        for unfiltered in [json!({"a": 1}), json!({"$or": [{"a": "x"}, {"b": "y"}]}), json!({"a": {"$ne": "x"}}), json!({"a": {"$in": ["x", 1]}})] {
            assert!(pre(unfiltered).may_match(b"{}"));
        }
    }
}
