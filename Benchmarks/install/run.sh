#!/bin/sh
# Benchmarks/install/run.sh [BINARY]
#
# A full `install 6.9` onto a new image file with a warm cache, against the raw
# unpack of exactly the packages that install verified (the list its log
# prints after verify-packages): `rpm2cpio | cpio` of each into a private
# tmpfs, `xargs -P <cores>`, in the same run. Bar: install <= 3.0x the raw unpack.
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

T0=$(now)
"$BIN" install "$RELEASE" "$W/bench.img" "$@" --log "$W/install.log" 2>"$W/install.err" \
    || { tail -20 "$W/install.err"; echo "install failed (log $W/install.log)" >&2; exit 1; }
T1=$(now)
INSTALL=$(echo "$T1 - $T0" | bc)
rm -f "$W/bench.img"
# The files the install verified, as its log lists them.
# (Each log line starts with a timestamp word.)
awk '/verified files \(/ {on = 1; next} on && $2 ~ /^\// {print $2; next} on {exit}' "$W/install.log" > "$W/files"
N=$(wc -l < "$W/files")
[ "$N" -gt 0 ] || { echo "no file list in $W/install.log" >&2; exit 1; }
BYTES=$(xargs stat -c %s < "$W/files" | awk '{s += $1} END {print s}')

mkdir -p "$W/raw"
mount -t tmpfs -o size=4g,mode=0755 bench-raw "$W/raw"
xargs cat < "$W/files" > /dev/null   # page cache, as for the install
T2=$(now)
# shellcheck disable=SC2016  # $0, $1, $2 are the inner sh's arguments, expanded there
awk '{print NR " " $0}' "$W/files" | xargs -P "$CORES" -L 1 sh -c 'mkdir "$0/$1" && cd "$0/$1" && rpm2cpio "$2" | cpio -idm --quiet 2>/dev/null' "$W/raw"
T3=$(now)
RAW=$(echo "$T3 - $T2" | bc)
UNPACKED=$(du -sb "$W/raw" | cut -f1)

echo "install steps (elapsed at start):"
grep -E '^\[ *[0-9.]+s\]' "$W/install.err" | sed 's/^/  /' || true
printf 'packages:            %s files, %s bytes (%s bytes unpacked)\n' "$N" "$BYTES" "$UNPACKED"
printf 'install %s (warm):  %.1f s\n' "$RELEASE" "$INSTALL"
printf 'raw unpack (-P %s):   %.1f s\n' "$CORES" "$RAW"
printf 'ratio install/raw:   %.2f (bar: <= 3.0)\n' "$(echo "$INSTALL / $RAW" | bc -l)"
