//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! entry points the fuzz targets call, so stable `cargo test` catches a regression
//! on any input the fuzzers ever kept, and keeps each bug the fuzzers found as a
//! named test. `FUZZ_CORPUS_REGENERATE=1` rewrites the seed files from
//! `crypto::fuzzing::seed_corpus` (see `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use fuzz_support::CorpusReplay;
use crypto::fuzzing;

const CORPUS: CorpusReplay =
    CorpusReplay { manifest_dir: env!("CARGO_MANIFEST_DIR"), seed_corpus: fuzzing::seed_corpus, run: fuzzing::run };

fn replay(target: &str) {
    CORPUS.replay(target);
}

#[test]
fn file_header_corpus_replays() {
    replay("file_header");
}

#[test]
fn envelope_corpus_replays() {
    replay("envelope");
}

#[test]
fn keyslot_file_corpus_replays() {
    replay("keyslot_file");
}

#[test]
fn keyring_file_corpus_replays() {
    replay("keyring_file");
}

#[test]
fn committed_seeds_match_the_generator() {
    CORPUS.check_committed_seeds(&fuzzing::TARGETS);
}
