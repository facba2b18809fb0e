//! The committed-corpus replay that every crate's `tests/fuzz_corpus.rs` runs on
//! stable Rust: each file under `fuzz/corpus/<target>/` goes through the same entry
//! point its fuzz target calls, and the committed `seed-*` files must equal what the
//! crate's seed generator makes (`FUZZ_CORPUS_REGENERATE=1` rewrites them).

use std::path::{Path, PathBuf};

/// Named inputs, as a seed generator returns them.
pub type NamedInputs = Vec<(String, Vec<u8>)>;

/// A crate's fuzzing entry points, as the replay tests need them.
#[derive(Debug, Clone, Copy)]
pub struct CorpusReplay {
    /// The crate's `CARGO_MANIFEST_DIR`; the corpus is at `../fuzz/corpus` from it.
    pub manifest_dir: &'static str,
    /// The crate's seed generator (`fuzzing::seed_corpus`).
    pub seed_corpus: fn(&str) -> NamedInputs,
    /// The crate's dispatcher (`fuzzing::run`); `false` for an unknown target.
    pub run: fn(&str, &[u8]) -> bool,
}

impl CorpusReplay {
    /// The directory of `target`'s committed corpus.
    pub fn dir(&self, target: &str) -> PathBuf {
        Path::new(self.manifest_dir).join("../fuzz/corpus").join(target)
    }

    /// Every file of `target`'s committed corpus as (name, bytes), sorted by name.
    pub fn files(&self, target: &str) -> NamedInputs {
        let dir = self.dir(target);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()));
        let mut files: NamedInputs = entries
            .map(|entry| {
                let path = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path();
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                (path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), bytes)
            })
            .collect();
        files.sort();
        files
    }

    /// Runs the generated seeds and every committed corpus file of `target`
    /// through its entry point; panics naming the input that broke an invariant.
    pub fn replay(&self, target: &str) {
        if std::env::var_os("FUZZ_CORPUS_REGENERATE").is_some() {
            let dir = self.dir(target);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            for (name, bytes) in (self.seed_corpus)(target) {
                let path = dir.join(format!("seed-{name}"));
                std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            }
        }
        // The generated seeds run even if a committed copy went missing.
        let seeds = (self.seed_corpus)(target);
        assert!(seeds.len() >= 10, "{target}: only {} seeds", seeds.len());
        for (name, bytes) in &seeds {
            assert!((self.run)(target, bytes), "unknown target {target} ({name})");
        }
        let files = self.files(target);
        let committed_seeds = files.iter().filter(|(name, _)| name.starts_with("seed-")).count();
        assert_eq!(committed_seeds, seeds.len(), "{target}: committed seeds differ from generated ones; regenerate");
        for (name, bytes) in &files {
            let result = std::panic::catch_unwind(|| (self.run)(target, bytes));
            assert!(result.is_ok(), "{target}: corpus input {name} broke an invariant");
        }
    }

    /// Checks that every committed `seed-*` file of `targets` equals the generator's output.
    pub fn check_committed_seeds(&self, targets: &[&str]) {
        for target in targets {
            let on_disk = self.files(target);
            for (name, bytes) in (self.seed_corpus)(target) {
                let file = format!("seed-{name}");
                let found = on_disk.iter().find(|(n, _)| *n == file).map(|(_, b)| b);
                assert_eq!(found, Some(&bytes), "{target}/{file} is stale or missing");
            }
        }
    }
}
