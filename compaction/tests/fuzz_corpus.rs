//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! entry points the fuzz targets call, so stable `cargo test` catches a regression
//! on any input the fuzzers ever kept, and keeps each bug the fuzzers found as a
//! named test. `FUZZ_CORPUS_REGENERATE=1` rewrites the seed files from
//! `compaction::fuzzing::seed_corpus` (see `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use compaction::fuzzing;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

/// Every file of the target's committed corpus, sorted by name.
fn corpus_files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    if std::env::var_os("FUZZ_CORPUS_REGENERATE").is_some() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in fuzzing::seed_corpus(target) {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    // The generated seeds run even if a committed copy went missing.
    let seeds = fuzzing::seed_corpus(target);
    assert!(seeds.len() >= 10, "{target}: only {} seeds", seeds.len());
    for (name, bytes) in &seeds {
        assert!(fuzzing::run(target, bytes), "unknown target {target} ({name})");
    }
    let files = corpus_files(target);
    let committed_seeds = files.iter().filter(|(name, _)| name.starts_with("seed-")).count();
    assert_eq!(committed_seeds, seeds.len(), "{target}: committed seeds differ from generated ones; regenerate");
    for (name, bytes) in &files {
        let result = std::panic::catch_unwind(|| fuzzing::run(target, bytes));
        assert!(result.is_ok(), "{target}: corpus input {name} broke an invariant");
    }
}

#[test]
fn manifest_edit_corpus_replays() {
    replay("manifest_edit");
}

#[test]
fn committed_seeds_match_the_generator() {
    for target in fuzzing::TARGETS {
        let on_disk = corpus_files(target);
        for (name, bytes) in fuzzing::seed_corpus(target) {
            let file = format!("seed-{name}");
            let found = on_disk.iter().find(|(n, _)| *n == file).map(|(_, b)| b);
            assert_eq!(found, Some(&bytes), "{target}/{file} is stale or missing");
        }
    }
}
