#!/bin/sh
# Benchmarks/batch/run.sh [BINARY]
#
# Batch figures, against the local test vault (root; loop devices):
#  1. bytes fetched from the vault by a batch of 6.8 + 6.9 with a COLD cache,
#     against the sum of the distinct package sizes the two releases need and
#     against two separate per-release cold runs (the dedup ratio);
#  2. wall time of four installs (6.8 and 6.9, two image files each) as one
#     `batch --jobs 2` against the same four installs one after another
#     (same run, same warm cache). Bar: batch <= 0.55 of sequential.
# The per-release cold runs stop after verify-packages (every download happens
# before it); the batch in 1 is a full install and warms the cache for 2.
# BATCH_BENCH_PARTS=1 runs part 1 only.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$REPO/.build/debug/centos6-ami}
TESTCACHE=${CENTOS6_AMI_TEST_CACHE:-/var/cache/centos6-ami-test}
VAULT=${CENTOS6_AMI_TEST_VAULT:-$TESTCACHE/vault-build}
KEY=$VAULT/keys/test-key.asc
[ -x "$BIN" ] || { echo "no binary at $BIN (swift build first, or pass it)" >&2; exit 1; }
[ -f "$VAULT/vault/6.9/os/x86_64/repodata/repomd.xml" ] || { echo "no test vault at $VAULT (scripts/test.sh builds it)" >&2; exit 1; }
mkdir -p "$TESTCACHE/tmp"
W=$(mktemp -d "$TESTCACHE/tmp/batch-bench.XXXXXX")
# shellcheck source=Benchmarks/lib.sh
. "$REPO/Benchmarks/lib.sh"

start_vault_server "$VAULT"
export CENTOS6_AMI_WORK_DIR="$W/work"

reset_stats() { curl -sS -f -X POST --data-binary '{"reset_stats": true}' "$MIRROR/__control__" >/dev/null; }
bytes_sent() { curl -sS "$MIRROR/__stats__" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_sent"])'; }
blob_list() { (cd "$1/blobs" && find . -type f ! -name '.*' -printf '%P %s\n') | sort; }
# The install options of every batch below, as the positional parameters ("$@": no word splitting).
set -- --mirror "$MIRROR" --gpg-key "$KEY" --log-dir "$W/logs"

echo "binary: $BIN"
echo "== 1. bytes from the vault, cold caches"
for r in 6.8 6.9; do
    reset_stats
    "$BIN" install $r "$W/solo-$r.img" --mirror "$MIRROR" --gpg-key "$KEY" --cache "$W/cache-$r" \
        --stop-after verify-packages --log "$W/solo-$r.log" 2>/dev/null
    eval "SOLO_$(echo $r | tr . _)=$(bytes_sent)"
done
SOLO_SUM=$((SOLO_6_8 + SOLO_6_9))
# The distinct packages the two releases need: the union of both per-release caches' blobs.
{ blob_list "$W/cache-6.8"; blob_list "$W/cache-6.9"; } | sort -u > "$W/union"
# Which blobs are packages: the sha256 of every .rpm in the vault.
(cd "$VAULT/vault" && sha256sum ./*/os/x86_64/Packages/*.rpm) | awk '{print "sha256/" $1}' | sort -u > "$W/rpm-sums"
awk 'NR == FNR {rpm[$1] = 1; next} ($1 in rpm) {p += $2; n++} !($1 in rpm) {m += $2} END {printf "%d %d %d\n", n, p, m}' \
    "$W/rpm-sums" "$W/union" > "$W/split"
read -r DISTINCT_N DISTINCT META < "$W/split"

reset_stats
T0=$(now)
"$BIN" batch 6.8="$W/cold-a.img" 6.9="$W/cold-b.img" "$@" --cache "$W/cache" --summary "$W/cold.json" >"$W/cold.out" 2>&1 \
    || { cat "$W/cold.out"; echo "cold batch failed" >&2; exit 1; }
T1=$(now)
BATCH_BYTES=$(bytes_sent)
BATCH_BLOBS=$(blob_list "$W/cache" | awk '{s += $2} END {print s}')
rm -f "$W/cold-a.img" "$W/cold-b.img"
printf '  per-release cold runs:  6.8 %s + 6.9 %s = %s bytes\n' "$SOLO_6_8" "$SOLO_6_9" "$SOLO_SUM"
printf '  distinct packages both releases need (union of the two caches): %s files, %s bytes; checksummed metadata of both: %s bytes\n' "$DISTINCT_N" "$DISTINCT" "$META"
printf '  batch 6.8+6.9, cold cache (full installs, %.1f s): %s bytes from the vault; its cache then holds %s bytes (packages + checksummed metadata)\n' \
    "$(echo "$T1 - $T0" | bc)" "$BATCH_BYTES" "$BATCH_BLOBS"
printf '  batch bytes - distinct packages = %s bytes (= checksummed metadata %s + the two repomd.xml)\n' "$((BATCH_BYTES - DISTINCT))" "$META"
printf '  dedup ratio (per-release bytes / batch bytes): %.3f\n' "$(echo "$SOLO_SUM / $BATCH_BYTES" | bc -l)"

[ "${BATCH_BENCH_PARTS:-12}" = 1 ] && exit 0
echo "== 2. four installs, warm cache: one after another vs batch --jobs 2"
T0=$(now)
for pair in 6.8:s1 6.8:s2 6.9:s3 6.9:s4; do
    r=${pair%%:*}; n=${pair#*:}
    "$BIN" install "$r" "$W/$n.img" --mirror "$MIRROR" --gpg-key "$KEY" --cache "$W/cache" --log "$W/$n.log" 2>"$W/$n.err" \
        || { tail -5 "$W/$n.err"; echo "sequential install $r failed" >&2; exit 1; }
    rm -f "$W/$n.img"
done
T1=$(now)
SEQ=$(echo "$T1 - $T0" | bc)
T0=$(now)
"$BIN" batch 6.8="$W/b1.img" 6.8="$W/b2.img" 6.9="$W/b3.img" 6.9="$W/b4.img" --jobs 2 "$@" --cache "$W/cache" \
    --summary "$W/batch.json" >"$W/batch.out" 2>&1 || { cat "$W/batch.out"; echo "batch failed" >&2; exit 1; }
T1=$(now)
PAR=$(echo "$T1 - $T0" | bc)
grep -E '^(RELEASE|6\.)' "$W/batch.out" | sed 's/^/  /'
printf '  sequential: %.1f s   batch --jobs 2: %.1f s   ratio: %.3f (bar <= 0.55)\n' "$SEQ" "$PAR" "$(echo "$PAR / $SEQ" | bc -l)"
echo "  load average now: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
