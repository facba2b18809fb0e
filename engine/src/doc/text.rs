//! Full-text terms: word splitting, case folding and BM25 scoring.
//!
//! A word is a maximal run of alphanumeric characters (Unicode's Alphabetic and
//! Numeric properties, so "Grüße", "東京" and "42" are words) with inner
//! apostrophes and hyphens dropped from neither side ("don't" is one word);
//! folding is Unicode lowercase. Terms longer than [`MAX_TERM_BYTES`] are cut
//! at a character boundary.

use std::collections::BTreeMap;

use serde_json::Value;

use super::json;

/// Longest term kept, in bytes.
pub const MAX_TERM_BYTES: usize = 128;
/// BM25's term-frequency saturation.
const BM25_K1: f64 = 1.2;
/// BM25's length normalisation.
const BM25_B: f64 = 0.75;

/// The folded words of `text`, in order, repeats kept.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if (c == '\'' || c == '\u{2019}') && !cur.is_empty() && chars.peek().is_some_and(|n| n.is_alphanumeric()) {
            cur.push('\'');
        } else if !cur.is_empty() {
            out.push(finish(std::mem::take(&mut cur)));
        }
    }
    if !cur.is_empty() {
        out.push(finish(cur));
    }
    out
}

fn finish(mut term: String) -> String {
    if term.len() > MAX_TERM_BYTES {
        let mut cut = MAX_TERM_BYTES;
        while !term.is_char_boundary(cut) {
            cut -= 1;
        }
        term.truncate(cut);
    }
    term
}

/// The distinct folded words of a `$text` query, sorted.
pub(crate) fn query_terms(text: &str) -> Vec<String> {
    let mut w = words(text);
    w.sort();
    w.dedup();
    w
}

/// The folded words of a document's field: a string, or the strings of an array.
pub(crate) fn document_words(doc: &Value, field: &str) -> Vec<String> {
    match json::lookup(doc, field) {
        Some(Value::String(s)) => words(s),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).flat_map(words).collect(),
        _ => Vec::new(),
    }
}

/// The distinct terms of a field.
pub(crate) fn document_terms(doc: &Value, field: &str) -> Vec<String> {
    let mut w = document_words(doc, field);
    w.sort();
    w.dedup();
    w
}

/// Term frequencies of a field, and its length in words.
pub(crate) fn term_frequencies(doc: &Value, field: &str) -> (BTreeMap<String, u32>, u32) {
    let words = document_words(doc, field);
    let len = u32::try_from(words.len()).unwrap_or(u32::MAX);
    let mut tf = BTreeMap::new();
    for w in words {
        *tf.entry(w).or_insert(0u32) += 1;
    }
    (tf, len)
}

/// BM25 contribution of one term: `tf` in a document of `doc_len` words, the
/// term in `df` of `docs` documents averaging `avg_len` words.
pub(crate) fn bm25(tf: u32, doc_len: u32, df: u64, docs: u64, avg_len: f64) -> f64 {
    let (tf, doc_len, df, docs) = (f64::from(tf), f64::from(doc_len), df as f64, docs as f64);
    let idf = ((docs - df + 0.5) / (df + 0.5) + 1.0).ln();
    let norm = if avg_len > 0.0 { doc_len / avg_len } else { 1.0 };
    idf * tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * (1.0 - BM25_B + BM25_B * norm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_unicode_and_fold_case() {
        assert_eq!(words("Hello, WORLD! Grüße aus Köln; don't stop"), ["hello", "world", "grüße", "aus", "köln", "don't", "stop"]);
        assert_eq!(words("ΣΟΦΊΑ 42x"), ["σοφία", "42x"]);
        assert_eq!(words("  ...  "), Vec::<String>::new());
    }

    #[test]
    fn bm25_prefers_rarer_terms_and_shorter_documents() {
        assert!(bm25(1, 10, 1, 100, 10.0) > bm25(1, 10, 50, 100, 10.0));
        assert!(bm25(1, 5, 1, 100, 10.0) > bm25(1, 50, 1, 100, 10.0));
        assert!(bm25(3, 10, 1, 100, 10.0) > bm25(1, 10, 1, 100, 10.0));
    }
}
