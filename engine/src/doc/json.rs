//! JSON values as the document store sees them: dotted field paths, the total
//! order queries sort by, the limits every document is checked against, and the
//! order-preserving byte encoding of scalar values that ordered index keys use
//! (docs/design.md, "The document store").
//!
//! Order across types: null < false < true < numbers < strings < arrays <
//! objects. Numbers compare by their value as an IEEE double whatever their JSON
//! form (`1`, `1.0` and `1e0` are equal; integers beyond ±2^53 compare as their
//! nearest double, in the index and in memory alike).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Deepest nesting of arrays and objects a document may have (the document
/// itself is depth 1).
pub const MAX_DOCUMENT_DEPTH: usize = 32;
/// Largest encoded document body.
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;
/// Longest `_id`, in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest field path, in bytes.
pub const MAX_FIELD_PATH_BYTES: usize = 512;

/// Type tags of the ordered encoding, in the order of the types.
const TAG_NULL: u8 = 0x01;
const TAG_FALSE: u8 = 0x02;
const TAG_TRUE: u8 = 0x03;
const TAG_NUMBER: u8 = 0x04;
const TAG_STRING: u8 = 0x05;

/// Rank of a value's type in the cross-type order.
fn type_rank(v: &Value) -> u8 {
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

/// Whether `a` and `b` are in the same comparison class for range operators
/// (`$gt` on a number matches numbers only: MongoDB's type bracketing).
pub(crate) fn same_class(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Bool(_), Value::Bool(_)) => true,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// A number as the double it compares as; `-0` is `0`.
pub(crate) fn number_f64(n: &serde_json::Number) -> f64 {
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        0.0
    } else {
        f
    }
}

/// The total order of values (see the module comment).
pub fn compare(a: &Value, b: &Value) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_f64(x).total_cmp(&number_f64(y)),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = compare(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => compare_objects(x, y),
        _ => Ordering::Equal,
    }
}

fn compare_objects(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    let mut xs: Vec<_> = x.iter().collect();
    let mut ys: Vec<_> = y.iter().collect();
    xs.sort_by(|a, b| a.0.cmp(b.0));
    ys.sort_by(|a, b| a.0.cmp(b.0));
    for ((ka, va), (kb, vb)) in xs.iter().zip(ys.iter()) {
        let o = ka.as_bytes().cmp(kb.as_bytes()).then_with(|| compare(va, vb));
        if o != Ordering::Equal {
            return o;
        }
    }
    xs.len().cmp(&ys.len())
}

/// Whether two values are equal under [`compare`].
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

/// Checks a field path: 1..=[`MAX_FIELD_PATH_BYTES`] bytes, dot-separated
/// non-empty names.
pub(crate) fn check_path(path: &str) -> Result<()> {
    if path.is_empty() || path.len() > MAX_FIELD_PATH_BYTES {
        return Err(Error::InvalidArgument(format!("field path must be 1..={MAX_FIELD_PATH_BYTES} bytes, got {}", path.len())));
    }
    if path.split('.').any(str::is_empty) {
        return Err(Error::InvalidArgument(format!("field path {path:?} has an empty name between dots")));
    }
    Ok(())
}

/// The value at a dotted path, or `None` if a step is missing or not an
/// object. Arrays are not traversed by name (`"a.b"` of `{"a": [{"b": 1}]}` is
/// missing).
pub fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = doc;
    for name in path.split('.') {
        cur = cur.as_object()?.get(name)?;
    }
    Some(cur)
}

/// Nesting depth of a value: scalars 0, `[]`/`{}` 1.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Parses one document: a JSON object with a string `_id` of
/// 1..=[`MAX_ID_BYTES`] bytes, at most [`MAX_DOCUMENT_DEPTH`] deep.
pub(crate) fn parse_document(text: &[u8]) -> Result<Value> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::InvalidArgument(format!("document of {} bytes exceeds {MAX_DOCUMENT_BYTES}", text.len())));
    }
    let value: Value = serde_json::from_slice(text).map_err(|e| Error::InvalidArgument(format!("malformed JSON: {e}")))?;
    check_document(&value)?;
    Ok(value)
}

/// Checks a parsed document (see [`parse_document`]).
pub(crate) fn check_document(value: &Value) -> Result<()> {
    let Some(object) = value.as_object() else {
        return Err(Error::InvalidArgument("a document must be a JSON object".into()));
    };
    match object.get("_id") {
        None => return Err(Error::InvalidArgument("document has no \"_id\"".into())),
        Some(Value::String(id)) => check_id(id)?,
        Some(_) => return Err(Error::InvalidArgument("document \"_id\" must be a string".into())),
    }
    if depth(value) > MAX_DOCUMENT_DEPTH {
        return Err(Error::InvalidArgument(format!("document nests deeper than {MAX_DOCUMENT_DEPTH} levels")));
    }
    Ok(())
}

/// Checks an `_id`: 1..=[`MAX_ID_BYTES`] bytes.
pub(crate) fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(Error::InvalidArgument(format!("\"_id\" must be 1..={MAX_ID_BYTES} bytes, got {}", id.len())));
    }
    Ok(())
}

/// Whether a value gets an index entry of its own (arrays give one per scalar
/// element; objects and nested arrays none).
pub(crate) fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// The scalar values a document has at `path`, each once: the value itself, or
/// the scalar elements of an array.
pub(crate) fn index_values<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = Vec::new();
    match lookup(doc, path) {
        None => {}
        Some(Value::Array(items)) => {
            for item in items.iter().filter(|v| is_scalar(v)) {
                if !out.iter().any(|seen| equal(seen, item)) {
                    out.push(item);
                }
            }
        }
        Some(v) if is_scalar(v) => out.push(v),
        Some(_) => {}
    }
    out
}

/// Order-preserving, self-delimiting encoding of a scalar value (`None` for
/// arrays and objects): a type tag, then for numbers the double's bits with the
/// sign flipped (all bits inverted when negative), big-endian; for strings the
/// bytes with `00` escaped as `00 ff` and `00 00` at the end.
pub(crate) fn encode_scalar(v: &Value, out: &mut Vec<u8>) -> bool {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Number(n) => {
            out.push(TAG_NUMBER);
            out.extend_from_slice(&encode_f64(number_f64(n)));
        }
        Value::String(s) => {
            out.push(TAG_STRING);
            for &b in s.as_bytes() {
                out.push(b);
                if b == 0 {
                    out.push(0xff);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        Value::Array(_) | Value::Object(_) => return false,
    }
    true
}

/// Length of the encoded scalar at the start of `bytes`, or `None` if it is
/// not a whole encoding.
pub(crate) fn encoded_len(bytes: &[u8]) -> Option<usize> {
    match bytes.first()? {
        &TAG_NULL | &TAG_FALSE | &TAG_TRUE => Some(1),
        &TAG_NUMBER => (bytes.len() >= 9).then_some(9),
        &TAG_STRING => {
            let mut i = 1;
            loop {
                match (bytes.get(i)?, bytes.get(i + 1)) {
                    (0, Some(0)) => return Some(i + 2),
                    (0, Some(0xff)) => i += 2,
                    (0, _) => return None,
                    _ => i += 1,
                }
            }
        }
        _ => None,
    }
}

/// The first and one-past-last encodings of a type class (for range bounds
/// open on one side): `[tag]` and `[tag + 1]`.
pub(crate) fn class_bounds(v: &Value) -> (Vec<u8>, Vec<u8>) {
    let (lo, hi) = match v {
        Value::Null => (TAG_NULL, TAG_NULL + 1),
        Value::Bool(_) => (TAG_FALSE, TAG_TRUE + 1),
        Value::Number(_) => (TAG_NUMBER, TAG_NUMBER + 1),
        _ => (TAG_STRING, TAG_STRING + 1),
    };
    (vec![lo], vec![hi])
}

fn encode_f64(f: f64) -> [u8; 8] {
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
    ordered.to_be_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode_scalar(v, &mut out));
        assert_eq!(encoded_len(&out), Some(out.len()));
        out
    }

    #[test]
    fn encoding_preserves_the_order_of_compare() {
        let values: Vec<Value> = vec![
            json!(null), json!(false), json!(true), json!(-1e300), json!(-2), json!(-1.5), json!(0), json!(-0.0), json!(1e-9),
            json!(1), json!(1.0), json!(2), json!(9007199254740993_u64), json!(1e300), json!(""), json!("\u{0}"),
            json!("\u{0}a"), json!("a"), json!("a\u{0}"), json!("ab"), json!("b"),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(enc(a).cmp(&enc(b)), compare(a, b), "{a} vs {b}");
            }
        }
    }

    /// The worked examples of engine/FORMAT.md, "Document store".
    #[test]
    fn encoding_matches_the_format_doc() {
        assert_eq!(enc(&json!(1)), [0x04, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(enc(&json!(-2)), [0x04, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(enc(&json!("a")), [0x05, 0x61, 0x00, 0x00]);
        assert_eq!(enc(&json!(true)), [0x03]);
        assert_eq!(enc(&json!(-0.0)), enc(&json!(0)));
    }

    #[test]
    fn numbers_are_equal_whatever_their_form() {
        let one: Value = serde_json::from_str("1").unwrap();
        let one_f: Value = serde_json::from_str("1.0").unwrap();
        let one_e: Value = serde_json::from_str("1e0").unwrap();
        assert_eq!(enc(&one), enc(&one_f));
        assert_eq!(enc(&one), enc(&one_e));
        assert!(equal(&one, &one_e));
    }

    #[test]
    fn documents_are_checked() {
        assert!(parse_document(br#"{"_id": "a", "x": [1, {"y": 2}]}"#).is_ok());
        for bad in [&b"{"[..], b"[1]", b"{}", br#"{"_id": 1}"#, br#"{"_id": ""}"#] {
            assert!(matches!(parse_document(bad), Err(Error::InvalidArgument(_))), "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"_id\":\"d\",\"a\":{}1{}}}", "[".repeat(MAX_DOCUMENT_DEPTH), "]".repeat(MAX_DOCUMENT_DEPTH));
        assert!(parse_document(deep.as_bytes()).is_err());
        let ok = format!("{{\"_id\":\"d\",\"a\":{}1{}}}", "[".repeat(MAX_DOCUMENT_DEPTH - 1), "]".repeat(MAX_DOCUMENT_DEPTH - 1));
        assert!(parse_document(ok.as_bytes()).is_ok());
    }
}
