#!/usr/bin/env bash
# Snapshot footprint of a prepared, empty 8 GiB target: allocated bytes of the
# sparse image file after unmount (what an EBS snapshot of it would store),
# ours vs the original install-centos6.sh way, side by side in one run, each
# kept mounted for the same 20 s. Needs root, parted, a built binary and the
# test vault (scripts/test.sh builds it; the install reads its metadata first).
# Usage: Benchmarks/footprint/run.sh [SECONDS_MOUNTED]
set -euo pipefail
cd "$(dirname "$0")/../.."
hold=${1:-20}
bin=${CENTOS6_AMI_BIN:-.build/debug/centos6-ami}
[ -x "$bin" ] || swift build >/dev/null
vault=${CENTOS6_AMI_TEST_VAULT:-/var/cache/centos6-ami-test/vault-build}
[ -f "$vault/vault/6.9/os/x86_64/repodata/repomd.xml" ] || { echo "no test vault at $vault (run scripts/test.sh once)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/centos6-ami-footprint.XXXXXX)
loop=""
server=""
cleanup() {
  if [ -n "$server" ] && kill "$server" 2>/dev/null; then wait "$server" 2>/dev/null || true; fi
  mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
  if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
allocated() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }

python3 scripts/testvault/vault-server.py --root "$vault/vault" --port-file "$work/port" --pid-file "$work/pid" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done

# Ours: everything up to a mounted, empty target with the yum cache, held, then unwound.
CENTOS6_AMI_WORK_DIR="$work/run" "$bin" install 6.9 "$work/ours.img" --size 8G \
  --mirror "http://127.0.0.1:$(cat "$work/port")" --gpg-key "$vault/keys/test-key.asc" --cache "$work/cache" \
  --stop-after mount-yum-cache --hold "$hold" --log "$work/ours.log" 2>/dev/null
ours=$(allocated "$work/ours.img")

# The original: parted 0%-100%, plain mkfs -t ext4, plain mount, same time mounted.
truncate -s 8G "$work/orig.img"
loop=$(losetup --find --show --partscan "$work/orig.img")
parted -s "$loop" mklabel msdos mkpart primary ext4 0% 100% 2>/dev/null
partx -a "$loop" 2>/dev/null || true
for _ in $(seq 50); do [ -b "${loop}p1" ] && break; sleep 0.1; done
mkfs -t ext4 -q "${loop}p1"
mkdir -p "$work/mnt"
mount "${loop}p1" "$work/mnt"
sleep "$hold"
umount "$work/mnt"
losetup -d "$loop"; loop=""
orig=$(allocated "$work/orig.img")

awk -v o="$ours" -v g="$orig" -v h="$hold" 'BEGIN {
  printf "mounted for %d s each, 8 GiB sparse image, allocated bytes after unmount:\n", h
  printf "  centos6-ami:          %12d bytes (%.2f MiB)\n", o, o / 1048576
  printf "  original (parted+mkfs): %10d bytes (%.2f MiB)\n", g, g / 1048576
  printf "  ratio original/ours:  %.1fx\n", g / o
  ok = (o <= 4 * 1048576 && g >= 15 * o)
  printf "  bar (ours <= 4 MiB and >= 15x smaller): %s\n", (ok ? "met" : "NOT met")
  exit ok ? 0 : 1
}'
