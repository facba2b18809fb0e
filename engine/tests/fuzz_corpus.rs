//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! entry points the fuzz targets call, so stable `cargo test` catches a regression
//! on any input the fuzzers ever kept, and keeps each bug the fuzzers found as a
//! named test. `FUZZ_CORPUS_REGENERATE=1` rewrites the seed files from
//! `synapsed_storage::fuzzing::seed_corpus` (see `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use fuzz_support::CorpusReplay;
use synapsed_storage::fuzzing;

const CORPUS: CorpusReplay =
    CorpusReplay { manifest_dir: env!("CARGO_MANIFEST_DIR"), seed_corpus: fuzzing::seed_corpus, run: fuzzing::run };

fn replay(target: &str) {
    CORPUS.replay(target);
}

#[test]
fn batch_record_corpus_replays() {
    replay("batch_record");
}

#[test]
fn engine_model_corpus_replays() {
    replay("engine_model");
}

/// Found by `batch_record` when it was written: `decode_batch` accepted a `Delete`
/// carrying a value, which `engine/FORMAT.md` forbids (value len 0 for Delete).
#[test]
fn regression_delete_with_a_value_is_refused() {
    let bytes = std::fs::read(CORPUS.dir("batch_record").join("regression-delete_with_value")).unwrap();
    assert_eq!(bytes.get(14), Some(&0), "the input holds a Delete op");
    assert_eq!(bytes.get(20..24), Some(&2u32.to_le_bytes()[..]), "the Delete carries a 2-byte value");
    fuzzing::batch_record(&bytes);
}

#[test]
fn committed_seeds_match_the_generator() {
    CORPUS.check_committed_seeds(&fuzzing::TARGETS);
}
