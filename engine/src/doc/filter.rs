//! Query filters: parsed from their JSON form into a tree, and evaluated on one
//! document. The evaluator is the definition of what a query returns; the
//! planner (`plan.rs`) only narrows which documents it is asked about.
//!
//! Semantics (MongoDB's, where they are simple): a field condition on an array
//! value matches if the array itself or any element matches, and the positive
//! operators of one operator object (`{"$gte": 1, "$lt": 5}`) must all hold on
//! the same value or element (MongoDB's `$elemMatch`, so that such a range is
//! one index range); range operators
//! match values of the operand's type only; `$ne` and `$exists: false` match a
//! missing field; `{"f": null}` matches an explicit null only.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::json::{self, compare, equal, same_class};
use super::text;
use crate::error::{Error, Result};

/// Deepest nesting of `$and`/`$or` a filter may have.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Most values in one `$in`, and most terms in one `$and`/`$or`.
pub const MAX_FILTER_TERMS: usize = 10_000;

/// A comparison operator of a field condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A parsed filter.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// Every condition holds.
    And(Vec<Filter>),
    /// At least one holds.
    Or(Vec<Filter>),
    /// `field op value`.
    Cmp { field: String, op: Op, value: Value },
    /// `field` equals one of the values.
    In { field: String, values: Vec<Value> },
    /// The value of `field`, or one element of it, meets every condition (the
    /// `Cmp` and `In` of one operator object, `{"$gte": 1, "$lt": 5}`).
    Element { field: String, conds: Vec<Filter> },
    /// `field` is present (`true`) or absent (`false`).
    Exists { field: String, present: bool },
    /// Every folded word of the text is among the document's text-field words.
    Text { words: Vec<String> },
}

impl Filter {
    /// Parses a filter object.
    pub(crate) fn parse(value: &Value) -> Result<Filter> {
        parse_object(value, 0)
    }

    /// Whether the filter uses `$text`.
    pub(crate) fn has_text(&self) -> bool {
        match self {
            Filter::And(f) | Filter::Or(f) => f.iter().any(Filter::has_text),
            Filter::Text { .. } => true,
            _ => false,
        }
    }

    /// Whether `doc` matches. `text_fields` are the collection's text-indexed fields.
    pub(crate) fn matches(&self, doc: &Value, text_fields: &[String]) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.matches(doc, text_fields)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(doc, text_fields)),
            Filter::Cmp { field, op: Op::Ne, value } => !field_matches(json::lookup(doc, field), |v| equal(v, value)),
            Filter::Cmp { field, op, value } => field_matches(json::lookup(doc, field), |v| cmp_holds(*op, v, value)),
            Filter::In { field, values } => field_matches(json::lookup(doc, field), |v| values.iter().any(|x| equal(v, x))),
            Filter::Element { field, conds } => field_matches(json::lookup(doc, field), |v| conds.iter().all(|c| c.holds_on(v))),
            Filter::Exists { field, present } => json::lookup(doc, field).is_some() == *present,
            Filter::Text { words } => {
                let mut have = std::collections::BTreeSet::new();
                for f in text_fields {
                    for token in text::document_terms(doc, f) {
                        have.insert(token);
                    }
                }
                words.iter().all(|w| have.contains(w))
            }
        }
    }
}

impl Filter {
    /// Whether a positive condition (`Cmp` other than `$ne`, `In`) holds on one value.
    fn holds_on(&self, v: &Value) -> bool {
        match self {
            Filter::Cmp { op, value, .. } => cmp_holds(*op, v, value),
            Filter::In { values, .. } => values.iter().any(|x| equal(v, x)),
            _ => false,
        }
    }
}

/// Whether `op` holds between a document value and the operand.
fn cmp_holds(op: Op, v: &Value, operand: &Value) -> bool {
    let range = |want: &dyn Fn(Ordering) -> bool| same_class(v, operand) && want(compare(v, operand));
    match op {
        Op::Eq => equal(v, operand),
        Op::Ne => !equal(v, operand),
        Op::Gt => range(&|o| o == Ordering::Greater),
        Op::Gte => range(&|o| o != Ordering::Less),
        Op::Lt => range(&|o| o == Ordering::Less),
        Op::Lte => range(&|o| o != Ordering::Greater),
    }
}

/// A condition on a field: the value itself, or any element of an array value.
fn field_matches(value: Option<&Value>, test: impl Fn(&Value) -> bool) -> bool {
    match value {
        None => false,
        Some(v) if test(v) => true,
        Some(Value::Array(items)) => items.iter().any(test),
        Some(_) => false,
    }
}

fn parse_object(value: &Value, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(bad(format!("filter nests deeper than {MAX_FILTER_DEPTH} levels")));
    }
    let Some(object) = value.as_object() else {
        return Err(bad("a filter must be a JSON object".into()));
    };
    let mut terms = Vec::new();
    for (key, operand) in object {
        match key.as_str() {
            "$and" | "$or" => {
                let Some(items) = operand.as_array() else {
                    return Err(bad(format!("{key} takes an array of filters")));
                };
                if items.is_empty() || items.len() > MAX_FILTER_TERMS {
                    return Err(bad(format!("{key} takes 1..={MAX_FILTER_TERMS} filters")));
                }
                let parts = items.iter().map(|f| parse_object(f, depth + 1)).collect::<Result<Vec<_>>>()?;
                terms.push(if key == "$and" { Filter::And(parts) } else { Filter::Or(parts) });
            }
            "$text" => {
                let Some(words) = operand.as_str() else {
                    return Err(bad("$text takes a string of words".into()));
                };
                let words = text::query_terms(words);
                if words.is_empty() {
                    return Err(bad("$text has no words".into()));
                }
                terms.push(Filter::Text { words });
            }
            k if k.starts_with('$') => return Err(bad(format!("unknown operator {k}"))),
            field => {
                json::check_path(field)?;
                parse_field(field, operand, &mut terms)?;
            }
        }
    }
    Ok(if terms.len() == 1 { terms.remove(0) } else { Filter::And(terms) })
}

fn parse_field(field: &str, operand: &Value, terms: &mut Vec<Filter>) -> Result<()> {
    let operators = match operand {
        Value::Object(o) if o.keys().any(|k| k.starts_with('$')) => o,
        _ => {
            terms.push(Filter::Cmp { field: field.to_owned(), op: Op::Eq, value: operand.clone() });
            return Ok(());
        }
    };
    check_all_operators(operators, field)?;
    let mut positive = Vec::new();
    for (op, arg) in operators {
        let field = field.to_owned();
        let cmp = |op| Filter::Cmp { field: field.clone(), op, value: arg.clone() };
        terms.push(match op.as_str() {
            "$eq" => cmp(Op::Eq),
            "$ne" => cmp(Op::Ne),
            "$gt" => cmp(Op::Gt),
            "$gte" => cmp(Op::Gte),
            "$lt" => cmp(Op::Lt),
            "$lte" => cmp(Op::Lte),
            "$in" => {
                let Some(values) = arg.as_array() else {
                    return Err(bad(format!("$in on {field} takes an array")));
                };
                if values.len() > MAX_FILTER_TERMS {
                    return Err(bad(format!("$in takes at most {MAX_FILTER_TERMS} values")));
                }
                Filter::In { field, values: values.clone() }
            }
            "$exists" => match arg {
                Value::Bool(present) => Filter::Exists { field, present: *present },
                _ => return Err(bad(format!("$exists on {field} takes true or false"))),
            },
            other => return Err(bad(format!("unknown operator {other}"))),
        });
        if matches!(terms.last(), Some(Filter::Cmp { op, .. }) if *op != Op::Ne) || matches!(terms.last(), Some(Filter::In { .. })) {
            positive.extend(terms.pop());
        }
    }
    if positive.len() > 1 {
        terms.push(Filter::Element { field: field.to_owned(), conds: positive });
    } else {
        terms.extend(positive);
    }
    Ok(())
}

fn check_all_operators(operators: &Map<String, Value>, field: &str) -> Result<()> {
    match operators.keys().find(|k| !k.starts_with('$')) {
        Some(k) => Err(bad(format!("condition on {field} mixes operators with the field name {k:?}"))),
        None => Ok(()),
    }
}

fn bad(message: String) -> Error {
    Error::InvalidArgument(format!("bad filter: {message}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    fn m(filter: Value, doc: Value) -> bool {
        Filter::parse(&filter).unwrap().matches(&doc, &["body".to_owned()])
    }

    #[test]
    fn operators_follow_the_documented_semantics() {
        let doc = json!({"_id": "1", "a": 5, "t": ["x", "y"], "n": null, "o": {"p": "q"}, "body": "Hello, World"});
        assert!(m(json!({"a": 5.0}), doc.clone()));
        assert!(m(json!({"a": {"$gt": 4, "$lte": 5}}), doc.clone()));
        let arr = json!({"_id": "2", "v": [1, 10]});
        assert!(!m(json!({"v": {"$gt": 2, "$lt": 8}}), arr.clone()), "one element must meet both");
        assert!(m(json!({"$and": [{"v": {"$gt": 2}}, {"v": {"$lt": 8}}]}), arr.clone()), "separate conditions, separate elements");
        assert!(!m(json!({"a": {"$gt": "4"}}), doc.clone()), "type bracketing");
        assert!(m(json!({"t": "x"}), doc.clone()));
        assert!(m(json!({"t": ["x", "y"]}), doc.clone()));
        assert!(!m(json!({"t": {"$ne": "x"}}), doc.clone()));
        assert!(m(json!({"missing": {"$ne": 1}}), doc.clone()));
        assert!(m(json!({"n": null}), doc.clone()));
        assert!(!m(json!({"missing": null}), doc.clone()));
        assert!(m(json!({"o.p": {"$in": ["z", "q"]}}), doc.clone()));
        assert!(m(json!({"$or": [{"a": 1}, {"o": {"p": "q"}}]}), doc.clone()));
        assert!(m(json!({"missing": {"$exists": false}, "a": {"$exists": true}}), doc.clone()));
        assert!(m(json!({"$text": "world HELLO"}), doc.clone()));
        assert!(!m(json!({"$text": "world bye"}), doc.clone()));
    }

    #[test]
    fn unknown_operators_are_refused() {
        for f in [json!({"a": {"$regex": "x"}}), json!({"$nor": []}), json!({"a": {"$gt": 1, "b": 2}}), json!([1]), json!({"$and": {}})] {
            assert!(matches!(Filter::parse(&f), Err(Error::InvalidArgument(_))), "{f}");
        }
    }
}
