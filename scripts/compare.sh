#!/usr/bin/env bash
# The side-by-side comparison with every peer engine, from a fresh machine:
# installs what RocksDB's build needs (libclang, a C++ compiler) when missing,
# then builds and runs the harness. Arguments go to the harness, e.g.
#   ./scripts/compare.sh --n 1000000 --dir /path/on/the/disk --json compare.json
# RocksDB's C++ build takes about an hour on 2 cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v c++ >/dev/null 2>&1 || need+=(g++)
# libclang-cpp.so.N alone is not enough: see libclang-present.sh.
./scripts/libclang-present.sh || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: the comparison needs ${need[*]}; install them (as root: apt-get install ${need[*]}) and rerun" >&2
        exit 1
    fi
    echo "installing ${need[*]} for RocksDB's build" >&2
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

exec cargo run --release -p synapsed-benches --features compare --bin compare -- "$@"
