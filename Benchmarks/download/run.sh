#!/usr/bin/env bash
# Download benchmark: the full install set from the loopback vault
# server with 100 ms added per request, fetched by our downloader
# (Fetch.Fetcher through fetch-bench) vs one-at-a-time fetching of the
# same files with curl, in the same run. Bar: ours >= 4x faster.
# Then ours against `curl -Z --parallel-max N` over the same URLs, over http
# and over https (self-signed certificate made here, trusted through
# CURL_CA_BUNDLE). Bars: ours <= 1.1x curl's time on http, <= 1.2x on https.
# Then a second run of ours on the warm cache must download 0 bytes.
#
# The file set: the test vault's 6.9 Packages when built
# ($CENTOS6_AMI_TEST_VAULT/vault/6.9/os/x86_64/Packages), otherwise ~150
# generated files of realistic sizes (10 KB - 5 MB, log-uniform, fixed seed).
#
# usage: Benchmarks/download/run.sh [--connections N] [--delay-ms N] [--generated]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

CONNECTIONS=8
DELAY_MS=100
FORCE_GENERATED=0
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) CONNECTIONS=$2; shift 2 ;;
    --delay-ms) DELAY_MS=$2; shift 2 ;;
    --generated) FORCE_GENERATED=1; shift ;;
    *) echo "usage: $0 [--connections N] [--delay-ms N] [--generated]" >&2; exit 64 ;;
  esac
done

CACHE_BASE=${CENTOS6_AMI_TEST_CACHE:-/var/cache/centos6-ami-test}
VAULT=${CENTOS6_AMI_TEST_VAULT:-$CACHE_BASE/vault-build}/vault
WORK=$(mktemp -d "${TMPDIR:-/tmp}/download-bench.XXXXXX")
SERVER_PID=
TLS_PID=
# shellcheck disable=SC2317  # called by the trap below, which shellcheck 0.9 does not follow
cleanup() {
  for pid in $SERVER_PID $TLS_PID; do
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- the file set -------------------------------------------------------------
if [ "$FORCE_GENERATED" = 0 ] && [ -d "$VAULT/6.9/os/x86_64/Packages" ]; then
  ROOT=$VAULT
  SET="test vault 6.9 Packages"
  (cd "$ROOT" && find 6.9/os/x86_64/Packages -name '*.rpm' -type f | sort) > "$WORK/names"
else
  ROOT=$WORK/mirror
  SET="generated set"
  mkdir -p "$ROOT/Packages"
  python3 - "$ROOT/Packages" > "$WORK/names" <<'EOF'
import math, os, random, sys
out = sys.argv[1]
rng = random.Random(20240601)
for i in range(150):
    size = int(math.exp(rng.uniform(math.log(10_000), math.log(5_000_000))))
    name = "pkg-%03d-1.0-1.el6.x86_64.rpm" % i
    with open(os.path.join(out, name), "wb") as f:
        f.write(rng.randbytes(size))
    print("Packages/" + name)
EOF
fi
while read -r rel; do
  size=$(stat -c %s "$ROOT/$rel")
  sum=$(sha256sum "$ROOT/$rel" | cut -d' ' -f1)
  echo "$rel $size $sum"
done < "$WORK/names" > "$WORK/list"
COUNT=$(wc -l < "$WORK/list")
TOTAL=$(awk '{s += $2} END {print s}' "$WORK/list")

# --- build the driver (release) ---------------------------------------------------
swift build -c release --scratch-path "$REPO/.build-bench" --product fetch-bench >&2
BENCH=$(swift build -c release --scratch-path "$REPO/.build-bench" --show-bin-path)/fetch-bench

# --- the server ------------------------------------------------------------------
python3 "$REPO/scripts/testvault/vault-server.py" --root "$ROOT" --port 0 \
  --port-file "$WORK/port" --pid-file "$WORK/pid" --delay-ms "$DELAY_MS" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
PORT=$(cat "$WORK/port")
BASE=http://127.0.0.1:$PORT
stats() { curl -s "$BASE/__stats__" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["requests"], d["bytes_sent"], d["connections"])'; }
reset_stats() { curl -s -X POST "$BASE/__stats__" > /dev/null; }

now() { date +%s.%N; }

# --- ours ------------------------------------------------------------------------
reset_stats
T0=$(now)
OURS_JSON=$("$BENCH" --base "$BASE/" --list "$WORK/list" --cache "$WORK/cache" --connections "$CONNECTIONS")
T1=$(now)
read -r OURS_REQ OURS_BYTES OURS_CONN < <(stats)

# --- curl, one file at a time ------------------------------------------------------
reset_stats
mkdir -p "$WORK/curl"
T2=$(now)
while read -r rel size sum; do
  curl -sS --fail -o "$WORK/curl/$(basename "$rel")" "$BASE/$rel"
done < "$WORK/list"
T3=$(now)
read -r CURL_REQ CURL_BYTES CURL_CONN < <(stats)
(cd "$WORK/curl" && while read -r rel size sum; do echo "$sum  $(basename "$rel")"; done < "$WORK/list" | sha256sum --quiet -c -)

# --- ours again: warm cache -----------------------------------------------------------
reset_stats
WARM_JSON=$("$BENCH" --base "$BASE/" --list "$WORK/list" --cache "$WORK/cache" --connections "$CONNECTIONS")
read -r WARM_REQ WARM_BYTES _ < <(stats)

OURS=$(echo "$T1 - $T0" | bc -l)
CURL=$(echo "$T3 - $T2" | bc -l)
RATIO=$(echo "$CURL / $OURS" | bc -l)
printf 'download benchmark: %s, %d files, %.1f MB, %d ms added per request\n' "$SET" "$COUNT" "$(echo "$TOTAL / 1000000" | bc -l)" "$DELAY_MS"
printf '  ours (%d connections): %6.2f s  (%d requests, %d connections, %d bytes served)\n' "$CONNECTIONS" "$OURS" "$OURS_REQ" "$OURS_CONN" "$OURS_BYTES"
printf '  curl one at a time:  %6.2f s  (%d requests, %d connections, %d bytes served)\n' "$CURL" "$CURL_REQ" "$CURL_CONN" "$CURL_BYTES"
printf '  ratio: ours is %.1fx faster (bar: >= 4x)\n' "$RATIO"
printf '  ours, driver: %s\n' "$OURS_JSON"
printf '  second run (warm cache): %d requests, %d bytes served; driver: %s\n' "$WARM_REQ" "$WARM_BYTES" "$WARM_JSON"
# --- ours vs curl -Z --parallel-max N, over http and over https ---------------------
# The https server uses a self-signed certificate made here, trusted through the
# environment (CURL_CA_BUNDLE: our https path runs the host's curl).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/tls.key" -out "$WORK/tls.pem" -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
python3 "$REPO/scripts/testvault/vault-server.py" --root "$ROOT" --port 0 --tls-cert "$WORK/tls.pem" --tls-key "$WORK/tls.key" \
  --port-file "$WORK/tls-port" --pid-file "$WORK/tls-pid" --delay-ms "$DELAY_MS" 2>"$WORK/tls-server.log" &
TLS_PID=$!
for _ in $(seq 100); do [ -s "$WORK/tls-port" ] && break; sleep 0.05; done
TLS_BASE=https://127.0.0.1:$(cat "$WORK/tls-port")
export CURL_CA_BUNDLE=$WORK/tls.pem
parallel_pair() {  # $1 = base URL; prints "ours curl"
  rm -rf "$WORK/pcache" "$WORK/pcurl"; mkdir -p "$WORK/pcurl"
  local t0 t1 t2
  t0=$(now)
  "$BENCH" --base "$1/" --list "$WORK/list" --cache "$WORK/pcache" --connections "$CONNECTIONS" > /dev/null
  t1=$(now)
  awk -v b="$1" -v d="$WORK/pcurl" '{n = split($1, p, "/"); print "url = \"" b "/" $1 "\""; print "output = \"" d "/" p[n] "\""}' "$WORK/list" > "$WORK/curl.cfg"
  curl -sS --no-progress-meter --fail -Z --parallel-max "$CONNECTIONS" -K "$WORK/curl.cfg"
  t2=$(now)
  (cd "$WORK/pcurl" && while read -r rel size sum; do echo "$sum  $(basename "$rel")"; done < "$WORK/list" | sha256sum --quiet -c -)
  echo "$(echo "$t1 - $t0" | bc -l) $(echo "$t2 - $t1" | bc -l)"
}
read -r HTTP_OURS HTTP_CURL < <(parallel_pair "$BASE")
read -r TLS_OURS TLS_CURL < <(parallel_pair "$TLS_BASE")
HTTP_RATIO=$(echo "$HTTP_OURS / $HTTP_CURL" | bc -l)
TLS_RATIO=$(echo "$TLS_OURS / $TLS_CURL" | bc -l)
printf '  http:  ours %6.2f s, curl -Z --parallel-max %d %6.2f s: ours/curl %.2f (bar: <= 1.1)\n' "$HTTP_OURS" "$CONNECTIONS" "$HTTP_CURL" "$HTTP_RATIO"
printf '  https: ours %6.2f s, curl -Z --parallel-max %d %6.2f s: ours/curl %.2f (bar: <= 1.2)\n' "$TLS_OURS" "$CONNECTIONS" "$TLS_CURL" "$TLS_RATIO"

FAIL=0
if [ "$(echo "$HTTP_RATIO <= 1.1" | bc -l)" != 1 ]; then echo "  FAIL: http above 1.1x curl -Z" >&2; FAIL=1; fi
if [ "$(echo "$TLS_RATIO <= 1.2" | bc -l)" != 1 ]; then echo "  FAIL: https above 1.2x curl -Z" >&2; FAIL=1; fi
if [ "$OURS_BYTES" -ne "$TOTAL" ]; then echo "  FAIL: ours fetched $OURS_BYTES bytes, the set is $TOTAL" >&2; FAIL=1; fi
if [ "$WARM_BYTES" -ne 0 ] || [ "$WARM_REQ" -ne 0 ]; then echo "  FAIL: the warm run fetched bytes" >&2; FAIL=1; fi
if [ "$(echo "$RATIO >= 4" | bc -l)" != 1 ]; then echo "  FAIL: ratio below 4x" >&2; FAIL=1; fi
exit $FAIL
