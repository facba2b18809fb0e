//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! entry points the fuzz targets call, so stable `cargo test` catches a regression
//! on any input the fuzzers ever kept, and keeps each bug the fuzzers found as a
//! named test. `FUZZ_CORPUS_REGENERATE=1` rewrites the seed files from
//! `wal::fuzzing::seed_corpus` (see `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use fuzz_support::CorpusReplay;
use wal::fuzzing;

const CORPUS: CorpusReplay =
    CorpusReplay { manifest_dir: env!("CARGO_MANIFEST_DIR"), seed_corpus: fuzzing::seed_corpus, run: fuzzing::run };

fn replay(target: &str) {
    CORPUS.replay(target);
}

#[test]
fn wal_record_corpus_replays() {
    replay("wal_record");
}

#[test]
fn wal_log_corpus_replays() {
    replay("wal_log");
}

#[test]
fn committed_seeds_match_the_generator() {
    CORPUS.check_committed_seeds(&fuzzing::TARGETS);
}
