//! `scripts/libclang-present.sh`, which `scripts/compare.sh` asks before it skips
//! installing libclang-dev for RocksDB's build: `libclang-cpp.so.N` (present on
//! machines without libclang-dev) must not count, `libclang.so` and
//! `libclang-N.so` must, as clang-sys decides.

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs;
use std::path::Path;
use std::process::Command;

const CPP_ONLY: &str = "3 libs found in cache `/etc/ld.so.cache'
\tlibclang-cpp.so.14 (libc6,x86-64) => /lib/x86_64-linux-gnu/libclang-cpp.so.14
\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6
\tlibcrypto.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcrypto.so.3
";

/// Runs the script against `root` (a stand-in for `/`) with `listing` as the
/// output of `ldconfig -p`; true when it says libclang is there.
fn present(root: &Path, listing: &str) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/libclang-present.sh");
    let listing_file = root.join("ldconfig-p.txt");
    fs::write(&listing_file, listing).unwrap();
    let status = Command::new("bash")
        .arg(script)
        .env("LIBCLANG_SEARCH_ROOT", root)
        .env("LDCONFIG_LISTING", &listing_file)
        .env_remove("LIBCLANG_PATH")
        .status()
        .unwrap();
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("libclang-present.sh exited with {other:?}"),
    }
}

fn touch(root: &Path, path: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"").unwrap();
}

#[test]
fn libclang_cpp_alone_does_not_count() {
    let root = tempfile::tempdir().unwrap();
    touch(root.path(), "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
    touch(root.path(), "usr/lib/llvm-14/lib/libclang-cpp.so.14");
    assert!(!present(root.path(), CPP_ONLY));
    assert!(!present(root.path(), ""));
}

#[test]
fn libclang_so_counts_where_clang_sys_looks() {
    for file in [
        "usr/lib/llvm-14/lib/libclang.so",
        "usr/lib/x86_64-linux-gnu/libclang-14.so",
        "usr/lib/libclang.so",
        "usr/local/lib/libclang-18.so",
        "usr/local/llvm18/lib/libclang.so",
    ] {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
        touch(root.path(), file);
        assert!(present(root.path(), CPP_ONLY), "{file}");
    }
}

#[test]
fn libclang_so_in_the_ld_cache_counts() {
    let root = tempfile::tempdir().unwrap();
    let listing = format!("{CPP_ONLY}\tlibclang.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libclang.so\n");
    assert!(present(root.path(), &listing));
    let listing = format!("{CPP_ONLY}\tlibclang-14.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libclang-14.so\n");
    assert!(present(root.path(), &listing));
}
