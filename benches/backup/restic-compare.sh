#!/usr/bin/env bash
# Backup and restore throughput of synapsed-storage against restic, both to the
# same local S3 server (rclone serve s3 from scripts/s3-server.sh), and the
# bytes each leaves on the server. Not part of CI.
#
#   benches/backup/restic-compare.sh [MIB]     (default 1024: a 1 GiB store)
#
# Needs restic (apt-get install restic) and a release build of the CLI
# (cargo build --release -p synapsed-storage).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
mib="${1:-1024}"
bin="$here/target/release/synapsed-storage"
[ -x "$bin" ] || { echo "build first: cargo build --release -p synapsed-storage" >&2; exit 1; }
command -v restic >/dev/null || { echo "restic is needed: apt-get install restic" >&2; exit 1; }
work="$(mktemp -d)"
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
ak=benchkey; sk=bench-secret-0123456789
mkdir -p "$work/s3/ours" "$work/s3/restic"
"$here/scripts/s3-server.sh" start "$port" "$work/s3" "$ak" "$sk" >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_REGION=us-east-1
export SYNAPSED_PASSPHRASE="bench passphrase" RESTIC_PASSWORD="bench passphrase"
db="$work/db"
"$bin" --db "$db" init --recovery-out "$work/rk" >/dev/null
# MIB MiB of values: 4 KiB of random base64 text each (zstd gains little on it).
python3 - "$mib" <<'PY' | "$bin" --db "$db" batch >/dev/null
import base64, os, sys
n = int(sys.argv[1]) * 256
out = sys.stdout
for i in range(n):
    out.write("put k%09d %s\n" % (i, base64.b64encode(os.urandom(3072)).decode()))
    if i % 1000 == 999:
        out.write("commit\n")
out.write("commit\n")
PY
"$bin" --db "$db" compact >/dev/null
store_bytes=$(du -sb "$db" | cut -f1)
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
ours_backup=$(t "$bin" --db "$db" backup "s3://ours/db")
ours_again=$(t "$bin" --db "$db" backup "s3://ours/db")
ours_restore=$(t "$bin" restore "s3://ours/db" --to "$work/restored")
export RESTIC_REPOSITORY="s3:http://127.0.0.1:$port/restic/db"
restic init >/dev/null 2>&1
restic_backup=$(t restic backup --quiet "$db")
restic_again=$(t restic backup --quiet "$db")
restic_restore=$(t restic restore latest --target "$work/restic-restored" --quiet)
ours_size=$(du -sb "$work/s3/ours" | cut -f1)
restic_size=$(du -sb "$work/s3/restic" | cut -f1)
mbps() { echo "scale=1; $store_bytes / 1048576 / $1" | bc; }
printf "store: %d bytes\n" "$store_bytes"
printf "%-18s %10s %10s %14s %12s %16s\n" tool "backup s" "MiB/s" "unchanged s" "restore s" "bytes on server"
printf "%-18s %10.2f %10s %14.2f %12.2f %16d\n" synapsed-storage "$ours_backup" "$(mbps "$ours_backup")" "$ours_again" "$ours_restore" "$ours_size"
printf "%-18s %10.2f %10s %14.2f %12.2f %16d\n" restic "$restic_backup" "$(mbps "$restic_backup")" "$restic_again" "$restic_restore" "$restic_size"
