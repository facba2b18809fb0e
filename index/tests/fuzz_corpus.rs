//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! entry points the fuzz targets call, so stable `cargo test` catches a regression
//! on any input the fuzzers ever kept, and keeps each bug the fuzzers found as a
//! named test. `FUZZ_CORPUS_REGENERATE=1` rewrites the seed files from
//! `index::fuzzing::seed_corpus` (see `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use fuzz_support::CorpusReplay;
use index::fuzzing;

const CORPUS: CorpusReplay =
    CorpusReplay { manifest_dir: env!("CARGO_MANIFEST_DIR"), seed_corpus: fuzzing::seed_corpus, run: fuzzing::run };

fn replay(target: &str) {
    CORPUS.replay(target);
}

#[test]
fn sst_block_corpus_replays() {
    replay("sst_block");
}

#[test]
fn sst_index_corpus_replays() {
    replay("sst_index");
}

#[test]
fn sst_footer_corpus_replays() {
    replay("sst_footer");
}

#[test]
fn bloom_corpus_replays() {
    replay("bloom");
}

#[test]
fn sst_properties_corpus_replays() {
    replay("sst_properties");
}

#[test]
fn sst_table_corpus_replays() {
    replay("sst_table");
}

#[test]
fn committed_seeds_match_the_generator() {
    CORPUS.check_committed_seeds(&fuzzing::TARGETS);
}
