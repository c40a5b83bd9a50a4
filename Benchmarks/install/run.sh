#!/bin/sh
# Benchmarks/install/run.sh [BINARY]
#
# A full `install 6.9` onto a new image file with a warm cache, against the raw
# unpack of exactly the packages that install verified (the list its log
# prints after verify-packages): `rpm2cpio | cpio` of each into a private
# tmpfs, `xargs -P <cores>`, in the same run, INSTALL_BENCH_TRIALS (3) times in
# turn. Bar: the median install <= 3.0x the median raw unpack.
# Root, loop devices and the test vault (scripts/testvault/build-vault.sh).
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$REPO/.build/debug/centos6-ami}
RELEASE=${INSTALL_BENCH_RELEASE:-6.9}
TESTCACHE=${CENTOS6_AMI_TEST_CACHE:-/var/cache/centos6-ami-test}
VAULT=${CENTOS6_AMI_TEST_VAULT:-$TESTCACHE/vault-build}
KEY=$VAULT/keys/test-key.asc
CORES=$(nproc)
[ -x "$BIN" ] || { echo "no binary at $BIN (swift build first, or pass it)" >&2; exit 1; }
[ -f "$VAULT/vault/$RELEASE/os/x86_64/repodata/repomd.xml" ] || { echo "no test vault at $VAULT" >&2; exit 1; }
{ command -v rpm2cpio >/dev/null && command -v cpio >/dev/null; } || { echo "needs rpm2cpio and cpio (apt-get install rpm2cpio cpio)" >&2; exit 1; }
mkdir -p "$TESTCACHE/tmp"
W=$(mktemp -d "$TESTCACHE/tmp/install-bench.XXXXXX")
# shellcheck source=Benchmarks/lib.sh
. "$REPO/Benchmarks/lib.sh"
# Also the tmpfs of the raw unpack; KEEP_BENCH=1 keeps W.
cleanup() {
    stop_server
    if mountpoint -q "$W/raw"; then umount "$W/raw"; fi
    if [ -n "${KEEP_BENCH:-}" ]; then echo "kept $W"; return; fi
    rm -rf "$W"
}

start_vault_server "$VAULT"
export CENTOS6_AMI_WORK_DIR="$W/work"
# The install options of both runs, as the positional parameters ("$@": no word splitting).
set -- --mirror "$MIRROR" --gpg-key "$KEY" --cache "$W/cache"

echo "binary: $BIN; release $RELEASE; $CORES cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm the cache (downloads, and the remembered verifications a warm cache holds).
"$BIN" install "$RELEASE" "$W/warm.img" "$@" --stop-after verify-packages --log "$W/warm.log" 2>/dev/null
rm -f "$W/warm.img"

# The files the install verifies, as the warm-up's log lists them.
# (Each log line starts with a timestamp word.)
awk '/verified files \(/ {on = 1; next} on && $2 ~ /^\// {print $2; next} on {exit}' "$W/warm.log" > "$W/files"
N=$(wc -l < "$W/files")
[ "$N" -gt 0 ] || { echo "no file list in $W/warm.log" >&2; exit 1; }
BYTES=$(xargs stat -c %s < "$W/files" | awk '{s += $1} END {print s}')
mkdir -p "$W/raw"
mount -t tmpfs -o size=4g,mode=0755 bench-raw "$W/raw"

# A shared 2-core builder's load swings within seconds, so TRIALS pairs
# (install, then raw unpack right after it) are timed in turn and the ratio of
# the medians is the figure; each pair's own ratio is printed too.
TRIALS=${INSTALL_BENCH_TRIALS:-3}
: > "$W/times"
for trial in $(seq "$TRIALS"); do
    T0=$(now)
    "$BIN" install "$RELEASE" "$W/bench.img" "$@" --log "$W/install.log" 2>"$W/install.err" \
        || { tail -20 "$W/install.err"; echo "install failed (log $W/install.log)" >&2; exit 1; }
    T1=$(now)
    rm -f "$W/bench.img"
    rm -rf "${W:?}/raw/"*
    xargs cat < "$W/files" > /dev/null   # page cache, as for the install
    T2=$(now)
    # shellcheck disable=SC2016  # $0, $1, $2 are the inner sh's arguments, expanded there
    awk '{print NR " " $0}' "$W/files" | xargs -P "$CORES" -L 1 sh -c 'mkdir "$0/$1" && cd "$0/$1" && rpm2cpio "$2" | cpio -idm --quiet 2>/dev/null' "$W/raw"
    T3=$(now)
    INSTALL=$(echo "$T1 - $T0" | bc)
    RAW=$(echo "$T3 - $T2" | bc)
    echo "$INSTALL $RAW" >> "$W/times"
    printf 'trial %s: install %.1f s, raw unpack %.1f s, ratio %.2f (load %s)\n' "$trial" "$INSTALL" "$RAW" "$(echo "$INSTALL / $RAW" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
done
UNPACKED=$(du -sb "$W/raw" | cut -f1)
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
INSTALL=$(cut -d' ' -f1 "$W/times" | median)
RAW=$(cut -d' ' -f2 "$W/times" | median)

echo "install steps of the last trial (elapsed at start):"
grep -E '^\[ *[0-9.]+s\]' "$W/install.err" | sed 's/^/  /' || true
printf 'packages:            %s files, %s bytes (%s bytes unpacked)\n' "$N" "$BYTES" "$UNPACKED"
printf 'install %s (warm):  %.1f s (median of %s)\n' "$RELEASE" "$INSTALL" "$TRIALS"
printf 'raw unpack (-P %s):   %.1f s (median of %s)\n' "$CORES" "$RAW" "$TRIALS"
printf 'ratio install/raw:   %.2f (bar: <= 3.0)\n' "$(echo "$INSTALL / $RAW" | bc -l)"
